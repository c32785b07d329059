"""The runc driver: runs CRI sandboxes and containers on this Linux host.

Network namespaces wired by CNI (``network``), per-pod namespaces and /etc files (``sandbox``),
OCI specs (``spec``), overlay root filesystems (``rootfs``), runc calls (``runc``), the
per-container shim that owns stdio, CRI logs and exit status (``shim``), cgroup files
(``cgroups``), and the ``RuncDriver`` that ties them together (``driver``).
"""

from . import cgroups, syscalls
from .driver import ExecTimeoutError, RuncDriver

__all__ = ["ExecTimeoutError", "RuncDriver", "cgroups", "syscalls"]
