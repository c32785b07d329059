"""Apply one layer blob to its own directory, in the form overlayfs takes as a lower layer.

Each layer is unpacked once into ``<layers>/<diff_id hex>`` and shared by every image that has
it; an image's rootfs is the overlay of its layer directories, lowest first. Layer whiteouts are
therefore written as overlay whiteouts rather than applied: ``.wh.<name>`` becomes a character
device 0/0 named ``<name>``, and ``.wh..wh..opq`` marks its directory opaque with the
``trusted.overlay.opaque`` xattr. The uncompressed stream must hash to the config's diff_id.
Layers may be gzip, zstd (through the ``zstd`` program) or uncompressed tar, told by magic bytes.

Entries are confined to the layer directory: absolute names are made relative, ``..`` is refused,
no entry is written through a symlink, and hard links must point inside the layer.
Synchronous; run it in a thread.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime.images.errors import PullError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(PullError):
    """A layer that could not be applied (bad tar, diff_id mismatch, unsafe entry)."""


@dataclass
class LayerStats:
    size: int        # bytes of regular file content
    inodes: int      # entries created


class _HashingReader:
    """A read-only stream that hashes everything read through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _Prefixed:
    """A stream with some bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, rest: BinaryIO):
        self.prefix = prefix
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            if n is None or n < 0:
                data, self.prefix = self.prefix + self.rest.read(), b""
                return data
            data, self.prefix = self.prefix[:n], self.prefix[n:]
            if len(data) < n:
                data += self.rest.read(n - len(data))
            return data
        return self.rest.read(n)


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _decompressed(src: BinaryIO) -> tuple[BinaryIO, list]:
    """The uncompressed stream of ``src`` (gzip, zstd or plain, by magic), and what to close after."""
    magic = _read_exactly(src, 4)
    src = _Prefixed(magic, src)
    if magic.startswith(GZIP_MAGIC):
        g = gzip.GzipFile(fileobj=src, mode="rb")
        return g, [g]
    if magic == ZSTD_MAGIC:
        zstd = shutil.which("zstd")
        if not zstd:
            raise LayerError("layer is zstd-compressed and the zstd program is not installed")
        proc = subprocess.Popen([zstd, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def feed() -> None:
            try:
                while chunk := src.read(CHUNK):
                    proc.stdin.write(chunk)
            except (OSError, ValueError):
                pass                      # the reader is gone; it reports its own error
            except LayerError:
                proc.kill()               # the source failed: the reader must not see a clean end
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

        feeder = threading.Thread(target=feed, name="zstd feed", daemon=True)
        feeder.start()
        return proc.stdout, [proc.stdout, proc, feeder]
    return src, []


def _close(things: list) -> None:
    for t in things:
        if isinstance(t, subprocess.Popen):
            if t.poll() is None:
                t.kill()
            t.wait()
        elif isinstance(t, threading.Thread):
            t.join()
        else:
            t.close()


class Pipe:
    """Bytes handed from a downloading thread to an unpacking thread, at most ``limit`` in flight.

    The producer calls ``feed`` then ``close`` (all arrived and verified) or ``fail`` (the reader
    then raises ``LayerError``). If the reader gives up first (``abandon``), further feeds are
    dropped so the download can still finish and report a digest mismatch, the likelier cause.
    """

    def __init__(self, limit: int = 16 << 20):
        self.limit = limit
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0                  # read position in the first chunk
        self._size = 0
        self._eof = False
        self._error: str | None = None
        self._abandoned = False

    def feed(self, data: bytes) -> None:
        with self._cond:
            while self._size >= self.limit and not self._abandoned:
                self._cond.wait()
            if self._abandoned or not data:
                return
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        with self._cond:
            self._error = reason
            self._cond.notify_all()

    def abandon(self) -> None:
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._offset = 0
            self._size = 0
            self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        with self._cond:
            while not self._chunks and not self._eof and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise LayerError(f"layer download failed: {self._error}")
            if not self._chunks:
                return b""
            head, start = self._chunks[0], self._offset
            if len(head) - start <= n:
                self._chunks.popleft()
                self._offset = 0
                data = head[start:] if start else head
            else:
                data = head[start:start + n]
                self._offset = start + n
            self._size -= len(data)
            self._cond.notify_all()
            return data


class _Applier:
    def __init__(self, root: Path):
        self.root = Path(os.path.realpath(root))
        self.known_dirs: set[str] = {""}
        self.dir_attrs: list[tuple[str, tarfile.TarInfo]] = []
        self.stats = LayerStats(0, 0)

    def _clean(self, name: str) -> str:
        parts = []
        for p in name.replace("\\", "/").split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                raise LayerError(f"layer entry {name!r} escapes the layer")
            parts.append(p)
        return "/".join(parts)

    def _abs(self, rel: str) -> str:
        return os.path.join(str(self.root), rel)

    def _ensure_parent(self, rel: str) -> None:
        """Make the parent directories of ``rel``, refusing to pass through a symlink."""
        parent = os.path.dirname(rel)
        if parent in self.known_dirs:
            return
        walked = ""
        for comp in parent.split("/"):
            walked = f"{walked}/{comp}" if walked else comp
            if walked in self.known_dirs:
                continue
            path = self._abs(walked)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                self.stats.inodes += 1
            else:
                if not stat.S_ISDIR(st.st_mode):
                    raise LayerError(f"layer entry {rel!r} lies under {walked!r}, which is not a directory")
            self.known_dirs.add(walked)

    def _remove_existing(self, rel: str, keep_dir: bool = False) -> None:
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
            self.known_dirs = {d for d in self.known_dirs if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(path)

    def apply(self, tf: tarfile.TarFile) -> None:
        for member in tf:
            rel = self._clean(member.name)
            if not rel:
                # The root of the layer: only its attributes.
                if member.isdir():
                    self.dir_attrs.append(("", member))
                continue
            self._ensure_parent(rel)
            base = os.path.basename(rel)
            if base == OPAQUE_MARKER:
                os.setxattr(self._abs(os.path.dirname(rel)) or str(self.root), OPAQUE_XATTR, b"y")
                continue
            if base.startswith(WHITEOUT_PREFIX):
                if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                    continue           # other AUFS metadata (.wh..wh.plnk, ...): meaningless here
                target = os.path.join(os.path.dirname(rel), base[len(WHITEOUT_PREFIX):])
                self._remove_existing(target)
                os.mknod(self._abs(target), stat.S_IFCHR | 0o600, os.makedev(0, 0))
                self.stats.inodes += 1
                continue
            self._entry(tf, member, rel)
        for rel, member in reversed(self.dir_attrs):
            path = self._abs(rel) if rel else str(self.root)
            try:
                still_dir = stat.S_ISDIR(os.lstat(path).st_mode)
            except FileNotFoundError:
                still_dir = False
            if still_dir:              # a later entry may have replaced or whited it out
                self._owner_mode_time(path, member, is_link=False)

    def _entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo, rel: str) -> None:
        path = self._abs(rel)
        if member.isdir():
            self._remove_existing(rel, keep_dir=True)
            if not os.path.isdir(path) or os.path.islink(path):
                os.mkdir(path, 0o700)
                self.stats.inodes += 1
            self.known_dirs.add(rel)
            self._xattrs(path, member)
            self.dir_attrs.append((rel, member))
            return
        self._remove_existing(rel)
        if member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                src = tf.extractfile(member)
                remaining = member.size
                while remaining > 0:
                    chunk = src.read(min(CHUNK, remaining))
                    if not chunk:
                        raise LayerError(f"layer entry {rel!r} is truncated")
                    out.write(chunk)
                    remaining -= len(chunk)
            self.stats.size += member.size
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            target = self._clean(member.linkname)
            if not target:
                raise LayerError(f"hard link {rel!r} has no target")
            tpath = self._abs(target)
            real_parent = os.path.realpath(os.path.dirname(tpath))
            inside = real_parent == str(self.root) or real_parent.startswith(str(self.root) + "/")
            if not inside or not os.path.lexists(tpath):
                raise LayerError(f"hard link {rel!r} points at {member.linkname!r}, not in this layer")
            os.link(tpath, path, follow_symlinks=False)
            self.stats.inodes += 1
            return                      # shares the target's inode and attributes
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise LayerError(f"layer entry {rel!r} has unsupported type {member.type!r}")
        self.stats.inodes += 1
        self._xattrs(path, member)
        self._owner_mode_time(path, member, is_link=member.issym())

    def _xattrs(self, path: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(XATTR_PAX_PREFIX):
                continue
            name = key[len(XATTR_PAX_PREFIX):]
            try:
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                    raise

    def _owner_mode_time(self, path: str, member: tarfile.TarInfo, *, is_link: bool) -> None:
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not is_link:
            os.chmod(path, member.mode & 0o7777)
        os.utime(path, ns=(int(member.mtime * 1e9),) * 2, follow_symlinks=False)


def apply_stream(src: BinaryIO, dest: Path, diff_id: str | None, what: str = "layer") -> LayerStats:
    """Unpack the layer read from ``src`` into ``dest`` (created; must not exist) and check its
    uncompressed digest. On any failure ``dest`` is removed and ``LayerError`` raised."""
    dest.mkdir(mode=0o755)
    closers: list = []
    try:
        raw, closers = _decompressed(src)
        reader = _HashingReader(raw)
        applier = _Applier(dest)
        with tarfile.open(fileobj=reader, mode="r|", errorlevel=2) as tf:
            applier.apply(tf)
        reader.drain()
        if diff_id and reader.digest != diff_id:
            raise LayerError(f"{what}: uncompressed content has digest {reader.digest}, "
                             f"the image config says {diff_id}", code="DIGEST_INVALID")
        return applier.stats
    except BaseException as e:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(e, (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError, ValueError)) \
                and not isinstance(e, PullError):
            raise LayerError(f"{what}: {type(e).__name__}: {e}") from e
        raise
    finally:
        _close(closers)


def apply_layer(blob: Path, dest: Path, diff_id: str | None) -> LayerStats:
    """``apply_stream`` from a blob file."""
    with blob.open("rb") as f:
        return apply_stream(f, dest, diff_id, what=f"layer {blob.name}")


def unpack_to(layers_dir: Path, src: Path | BinaryIO, diff_id: str) -> tuple[Path, LayerStats]:
    """Unpack a blob file or stream into ``layers_dir/<diff_id hex>`` atomically (temporary dir,
    then rename). If another unpack of the same layer won the rename, its directory stays."""
    final = layers_dir / diff_id.split(":", 1)[1]
    tmp = Path(tempfile.mkdtemp(dir=layers_dir, prefix="tmp-"))
    tmp.rmdir()
    if isinstance(src, Path):
        stats = apply_layer(src, tmp, diff_id)
    else:
        stats = apply_stream(src, tmp, diff_id, what=f"layer {diff_id}")
    try:
        os.rename(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    return final, stats


def tree_stats(path: Path) -> LayerStats:
    """Bytes and inodes of an existing tree (for layers found on disk without recorded stats)."""
    stats = LayerStats(0, 0)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            stats.inodes += 1
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                stats.size += st.st_size
    return stats
