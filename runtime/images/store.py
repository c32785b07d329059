"""The content store: blobs addressed by sha256 under ``<root>/blobs/sha256/<hex>``.

A blob appears only complete and verified: writers fill a temporary file under ``<root>/ingest``,
hash while writing, check digest and size, then rename into place. A blob path is therefore
trusted without re-hashing; ``verify`` re-hashes on demand. All methods are synchronous and do
file I/O: callers on the event loop run them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from runtime.images.errors import PullError
from runtime.images.reference import is_digest

CHUNK = 1 << 20


class DigestMismatch(PullError):
    """Content did not hash to (or was not the size of) what its descriptor promised."""


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a sha256 digest we can store, else raise ``PullError``."""
    if not isinstance(digest, str) or not is_digest(digest):
        raise PullError(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
    return digest


class BlobWriter:
    """A blob being written: ``write`` chunks, then ``commit`` (verifies, renames) or ``abort``."""

    def __init__(self, store: ContentStore, expected_digest: str | None, expected_size: int | None):
        self.store = store
        self.expected_digest = check_digest(expected_digest) if expected_digest else None
        self.expected_size = expected_size if expected_size is not None and expected_size >= 0 else None
        fd, name = tempfile.mkstemp(dir=store.ingest_dir, prefix="blob-")
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0
        self.done = False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatch(f"blob {self.expected_digest}: more than the expected {self.expected_size} bytes")
        self.hash.update(data)
        self.file.write(data)

    def commit(self) -> str:
        """Verify and move into place; returns the digest. A mismatch deletes the temporary file."""
        try:
            digest = "sha256:" + self.hash.hexdigest()
            if self.expected_size is not None and self.size != self.expected_size:
                raise DigestMismatch(f"blob {self.expected_digest or digest}: size {self.size}, "
                                     f"expected {self.expected_size}")
            if self.expected_digest is not None and digest != self.expected_digest:
                raise DigestMismatch(f"blob {self.expected_digest}: content has digest {digest}")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.path, self.store.path(digest))
            self.done = True
            return digest
        finally:
            if not self.done:
                self.abort()

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)
        self.done = True

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self.done:
            self.abort()


class ContentStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.ingest_dir = self.root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blob_dir / check_digest(digest).split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def writer(self, expected_digest: str | None = None, expected_size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected_digest, expected_size)

    def write_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        """Store ``data`` (verifying ``expected_digest`` if given); returns its digest."""
        with self.writer(expected_digest, len(data) if expected_digest else None) as w:
            w.write(data)
            return w.commit()

    def write_stream(self, src: BinaryIO, expected_digest: str | None = None,
                     expected_size: int | None = None) -> str:
        """Copy ``src`` into the store, verifying if expectations are given; returns the digest."""
        if expected_digest and self.has(expected_digest):
            return expected_digest
        with self.writer(expected_digest, expected_size) as w:
            while chunk := src.read(CHUNK):
                w.write(chunk)
            return w.commit()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob; False if missing or corrupt."""
        h = hashlib.sha256()
        try:
            with self.open(digest) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return "sha256:" + h.hexdigest() == digest

    def digests(self) -> Iterator[str]:
        for name in os.listdir(self.blob_dir):
            if len(name) == 64:
                yield "sha256:" + name

    def clear_ingest(self) -> None:
        """Drop temporary files left by an interrupted process (only call when no writer is active)."""
        shutil.rmtree(self.ingest_dir, ignore_errors=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
