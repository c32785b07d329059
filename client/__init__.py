"""The async API client every component and the CLI use.

Owns kubeconfig loading (``kubeconfig``), REST calls and watch streams (``rest``), informers and
their local caches (``informer``), the rate-limited work queue (``workqueue``), leader election on
Leases (``leaderelection``), the event recorder (``events``) and the injectable clock (``clock``)
that lets all of them run in virtual time under test. Imports ``api`` and nothing else of ours.
"""
