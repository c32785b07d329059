"""Thin ctypes wrappers for the Linux calls the driver makes without forking a helper.

All of them block briefly in the kernel; callers on the event loop run them in a thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

MS_RDONLY = 1
MS_BIND = 4096
MNT_DETACH = 2
CLONE_NEWNET = 0x40000000
EINVAL = 22
ENOENT = 2


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    ret = _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode() or None)
    _check(ret, f"mount {fstype} on {target}")


def umount(target: str, detach: bool = True) -> bool:
    """Unmount ``target``; False when nothing was mounted there (or it does not exist)."""
    ret = _libc.umount2(target.encode(), MNT_DETACH if detach else 0)
    if ret != 0:
        err = ctypes.get_errno()
        if err in (EINVAL, ENOENT):
            return False
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
    return True


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix`` (deepest first), from /proc/self/mountinfo."""
    prefix = prefix.rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)
