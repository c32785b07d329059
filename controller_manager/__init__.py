"""The controller manager: controllers that turn desired state into running replicas.

Each controller is a ``reconcile(key)`` fed by shared informers through a work queue
(``base.Controller``); ``manager`` runs the enabled ones together in one process, behind leader
election, with ``/healthz`` and ``/metrics``. Imports ``api`` and ``client`` only.
"""
