"""The object model, pure and without I/O.

Owns the resource registry, metadata helpers, defaulting, validation, selectors, quantities,
patches and the typed errors that map to Kubernetes ``Status`` objects. Imports nothing else of
ours; everything above it (client, apiserver, controllers) speaks in its terms.
"""
