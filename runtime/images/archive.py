"""Read image archives into the content store: OCI image layouts (a directory or a tar of one) and
docker-archive tars (``docker save``, ``skopeo copy ... docker-archive:``).

``load`` copies, verifying each digest, the blobs an archive's images need for this platform and
says which top-level manifest (or index) digest each image has and under which names. A
docker-archive carries no manifest: one is written (Docker schema 2) and stored, and since that
digest exists in no registry such images get no repo digests. Synchronous; run it in a thread.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from runtime.images import reference
from runtime.images.errors import InvalidReference, PullError
from runtime.images.registry import INDEX_TYPES, manifest_media_type, select_platform
from runtime.images.store import ContentStore, check_digest

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
META_MAX = 8 << 20


class ArchiveError(PullError):
    """A malformed or incomplete archive."""


@dataclass
class ArchiveImage:
    top_digest: str                  # the manifest or index the names point at
    names: list[str] = field(default_factory=list)   # normalized "domain/path:tag"
    registry_digest: bool = True     # False when the manifest was written here (docker-archive)


class _Source:
    """Named files of a directory or a tar, read by their path relative to the archive root."""

    def __init__(self, path: Path):
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            return
        try:
            self.tar = tarfile.open(path, "r:*")
            for m in self.tar.getmembers():
                name = os.path.normpath(m.name).lstrip("/")
                if m.isreg() or m.islnk() or m.issym():
                    self.members[name] = m
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ArchiveError(f"{path}: not a readable tar: {e}") from e

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def exists(self, name: str) -> bool:
        name = os.path.normpath(name).lstrip("/")
        if self.tar is None:
            p = (self.path / name).resolve()
            return p.is_file() and p.is_relative_to(self.path.resolve())
        return name in self.members

    def open(self, name: str) -> BinaryIO:
        name = os.path.normpath(name).lstrip("/")
        if name.startswith("../"):
            raise ArchiveError(f"archive path {name!r} escapes the archive")
        if self.tar is None:
            p = (self.path / name).resolve()
            if not p.is_relative_to(self.path.resolve()):
                raise ArchiveError(f"archive path {name!r} escapes the archive")
            try:
                return p.open("rb")
            except FileNotFoundError as e:
                raise ArchiveError(f"archive lacks {name}") from e
        member = self.members.get(name)
        f = self.tar.extractfile(member) if member is not None else None
        if f is None:
            raise ArchiveError(f"archive lacks {name}")
        return f

    def read(self, name: str, limit: int = META_MAX) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"archive file {name} is larger than {limit} bytes")
        return data

    def read_json(self, name: str):
        try:
            return orjson.loads(self.read(name))
        except orjson.JSONDecodeError as e:
            raise ArchiveError(f"archive file {name} is not JSON") from e


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest).split(":", 1)[1]


def _names_for(annotations: dict, name: str | None) -> list[str]:
    """The refs an index.json entry stands for: a full name, or ``name`` with the entry's tag."""
    full = annotations.get(CONTAINERD_NAME, "")
    ref_name = annotations.get(REF_NAME, "")
    candidates = []
    if full:
        candidates.append(full)
    elif ref_name and any(c in ref_name for c in "/:@"):
        candidates.append(ref_name)
    elif name:
        candidates.append(f"{name}:{ref_name}" if ref_name else name)
    out = []
    for c in candidates:
        try:
            r = reference.parse(c)
        except InvalidReference as e:
            raise ArchiveError(f"archive names its image {c!r}: {e}") from e
        if r.tag:
            out.append(r.tagged)
    return out


def _load_oci(src: _Source, content: ContentStore, name: str | None, written: list[str]) -> list[ArchiveImage]:
    index = src.read_json("index.json")
    images = []
    for desc in index.get("manifests") or []:
        top = desc.get("digest", "")
        _copy(src, content, top, desc.get("size"), written)
        body = content.read(top)
        mt = manifest_media_type(body, desc.get("mediaType", ""))
        manifest_digest = top
        if mt in INDEX_TYPES:
            child = select_platform(orjson.loads(body))
            manifest_digest = child["digest"]
            _copy(src, content, manifest_digest, child.get("size"), written)
            body = content.read(manifest_digest)
            if manifest_media_type(body, child.get("mediaType", "")) in INDEX_TYPES:
                raise ArchiveError(f"index {top}: nested indexes are not supported")
        manifest = orjson.loads(body)
        for part in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
            _copy(src, content, part.get("digest", ""), part.get("size"), written)
        images.append(ArchiveImage(top, _names_for(desc.get("annotations") or {}, name), True))
    return images


def _copy(src: _Source, content: ContentStore, digest: str, size, written: list[str]) -> None:
    check_digest(digest)
    if content.has(digest):
        return
    with src.open(_blob_name(digest)) as f:
        content.write_stream(f, digest, size if isinstance(size, int) else None)
    written.append(digest)


def _load_docker(src: _Source, content: ContentStore, name: str | None,
                 written: list[str]) -> list[ArchiveImage]:
    entries = src.read_json("manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json is not a list")
    images = []
    for entry in entries:
        cfg_name = entry.get("Config", "")
        with src.open(cfg_name) as f:
            cfg_digest = _write_new(content, f, written)
        cfg_size = content.size(cfg_digest)
        layers = []
        for layer_name in entry.get("Layers") or []:
            with src.open(layer_name) as f:
                digest = _write_new(content, f, written)
            with content.open(digest) as f:
                gz = f.read(2) == b"\x1f\x8b"
            layers.append({"mediaType": MT_DOCKER_LAYER_GZIP if gz else MT_DOCKER_LAYER,
                           "size": content.size(digest), "digest": digest})
        manifest = {"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST,
                    "config": {"mediaType": MT_DOCKER_CONFIG, "size": cfg_size, "digest": cfg_digest},
                    "layers": layers}
        manifest_bytes = orjson.dumps(manifest)
        top = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        if not content.has(top):
            content.write_bytes(manifest_bytes, top)
            written.append(top)
        tags = entry.get("RepoTags") or ([name] if name else [])
        names = []
        for t in tags:
            try:
                r = reference.parse(t)
            except InvalidReference as e:
                raise ArchiveError(f"archive names its image {t!r}: {e}") from e
            if r.tag:
                names.append(r.tagged)
        images.append(ArchiveImage(top, names, False))
    return images


def load(path: Path, content: ContentStore, name: str | None = None,
         written: list[str] | None = None) -> list[ArchiveImage]:
    """Copy the images of the archive at ``path`` into ``content``.

    ``name`` (a repository such as ``example.com/app``) names images the archive tags with a bare
    tag or not at all. Every blob this call adds to the store is appended to ``written`` as it
    lands, so that a caller can drop them when the load, or what follows it, fails.
    """
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    written = [] if written is None else written
    src = _Source(path)
    try:
        if src.exists("index.json") and src.exists("oci-layout"):
            images = _load_oci(src, content, name, written)
        elif src.exists("manifest.json"):
            images = _load_docker(src, content, name, written)
        else:
            raise ArchiveError(f"{path}: neither an OCI image layout (oci-layout, index.json) "
                               "nor a docker-archive (manifest.json)")
        return images
    except PullError:
        raise
    except (OSError, tarfile.TarError, EOFError, KeyError, TypeError, AttributeError) as e:
        raise ArchiveError(f"{path}: {type(e).__name__}: {e}") from e
    finally:
        src.close()


def _write_new(content: ContentStore, f: BinaryIO, written: list[str]) -> str:
    """Store a stream whose digest is not known beforehand; note it in ``written`` if it is new."""
    with content.writer() as w:
        while chunk := f.read(1 << 20):
            w.write(chunk)
        digest = "sha256:" + w.hash.hexdigest()
        if content.has(digest):
            w.abort()
            return digest
        w.commit()
    written.append(digest)
    return digest
