"""The API server: the Kubernetes REST API over a storage backend.

Owns HTTP routing and handlers, the watch cache that serves LIST and WATCH from memory,
admission (defaulting, validation, namespace lifecycle) and the storage drivers in ``storage/``.
Imports ``api`` only.
"""
