"""Image references: parsing, validation and docker.io normalization.

``busybox`` -> ``docker.io/library/busybox:latest``; ``localhost:5000/a/b:tag`` keeps its registry;
``name@sha256:<hex>`` pins a manifest digest (a tag next to a digest is kept but the digest wins).
The first path component is a registry host when it contains ``.`` or ``:`` or is ``localhost``.
Only sha256 digests are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.images.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = {"index.docker.io", "registry-1.docker.io"}
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ANY_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


@dataclass(frozen=True)
class Reference:
    domain: str            # registry host[:port], "docker.io" for Docker Hub
    path: str              # repository path, "library/busybox"
    tag: str = ""          # "" when pinned by digest only
    digest: str = ""       # "sha256:<hex>" or ""

    @property
    def name(self) -> str:
        """``domain/path``: the repository, as stored in repo tags and repo digests."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    @property
    def tagged(self) -> str:
        """``name:tag`` ("" when the reference has no tag)."""
        return f"{self.name}:{self.tag}" if self.tag else ""

    @property
    def object(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag


def is_digest(value: str) -> bool:
    return bool(_DIGEST.fullmatch(value))


def parse(ref: str) -> Reference:
    """Parse and normalize ``ref``; raise ``InvalidReference`` naming what is wrong."""
    if not isinstance(ref, str) or not ref:
        raise InvalidReference("image reference is empty")
    if ref != ref.strip() or any(c.isspace() for c in ref):
        raise InvalidReference(f"image reference {ref!r} contains whitespace")
    rest, digest = ref, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _ANY_DIGEST.fullmatch(digest):
            raise InvalidReference(f"image reference {ref!r}: invalid digest {digest!r}")
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"image reference {ref!r}: only lowercase sha256 digests are supported")
    tag = ""
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"image reference {ref!r}: invalid tag {tag!r}")
    if not rest:
        raise InvalidReference(f"image reference {ref!r} has no repository name")

    parts = rest.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path_parts = first, parts[1:]
        if not _DOMAIN.fullmatch(domain):
            raise InvalidReference(f"image reference {ref!r}: invalid registry host {domain!r}")
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    for comp in path_parts:
        if not _COMPONENT.fullmatch(comp):
            if comp.lower() != comp and _COMPONENT.fullmatch(comp.lower()):
                raise InvalidReference(f"image reference {ref!r}: repository name must be lowercase")
            raise InvalidReference(f"image reference {ref!r}: invalid repository path component {comp!r}")
    path = "/".join(path_parts)
    if domain == DEFAULT_DOMAIN and len(path_parts) == 1:
        path = OFFICIAL_PREFIX + path
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise InvalidReference(f"image reference {ref!r}: repository name longer than {NAME_MAX} characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def with_tag(name: str, tag: str) -> str:
    return f"{name}:{tag}"


def with_digest(name: str, digest: str) -> str:
    return f"{name}@{digest}"
