"""The scheduler: assigns each unscheduled pod to a node that can run it, and explains itself.

``framework`` holds the extension points as small protocols and the runner of a profile's
plugins; ``plugins/`` the Kubernetes plugins; ``cache`` the node state with assumed pods;
``queue`` the active/backoff/unschedulable queues; ``scheduler`` the scheduling and binding
cycles; ``server`` the HTTP endpoints (healthz, metrics, why-pending). Imports ``api`` and
``client`` only.
"""
