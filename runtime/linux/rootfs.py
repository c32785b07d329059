"""A container's root filesystem: overlayfs over the image's unpacked layers.

Layout in the container's state dir: ``rootfs`` (the mount point), ``upper`` and ``work``
(the writable layer). Blocking functions; callers run them in a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import syscalls

MAX_MOUNT_DATA = 3800      # of the 4096 bytes the kernel copies for mount options


def mount_rootfs(state_dir: Path, layer_dirs: list[Path]) -> Path:
    target = state_dir / "rootfs"
    upper, work = state_dir / "upper", state_dir / "work"
    for d in (target, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    if is_mounted(target):
        return target
    lowers = [str(p) for p in reversed(layer_dirs)]   # overlayfs wants the topmost layer first
    if not lowers:
        empty = state_dir / "empty"
        empty.mkdir(exist_ok=True)
        lowers = [str(empty)]
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    if len(opts) < MAX_MOUNT_DATA:
        syscalls.mount("overlay", str(target), "overlay", 0, opts)
        return target
    # Mount options must fit in one page: name the layers by short relative links and mount
    # from inside the link directory (overlayfs resolves the paths at mount time).
    links = state_dir / "l"
    links.mkdir(exist_ok=True)
    for i, lower in enumerate(lowers):
        link = links / str(i)
        if not link.is_symlink():
            link.symlink_to(lower)
    opts = f"lowerdir={':'.join(str(i) for i in range(len(lowers)))},upperdir=../upper,workdir=../work"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, "../rootfs"], cwd=links,
                   check=True, capture_output=True)
    return target


def is_mounted(path: Path) -> bool:
    return str(path) in syscalls.mounts_under(str(path))


def unmount_all(path: Path) -> None:
    """Unmount everything at or below ``path`` (deepest first)."""
    for point in syscalls.mounts_under(str(path)):
        syscalls.umount(point)


def writable_layer_bytes(state_dir: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(state_dir / "upper"):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def remove_state(state_dir: Path) -> None:
    unmount_all(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
