"""Bytes in and out: request bodies, stored values and response framing.

Objects are stored as JSON without ``metadata.resourceVersion`` (the storage revision is the
version) with ``kind``, ``apiVersion`` and ``metadata`` first, so the version can be spliced into
stored bytes without decoding them: lists and watch events of thousands of objects are then a
join of byte strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import yaml

from api.errors import BadRequest, UnsupportedMediaType
from apiserver import protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

_METADATA = b'"metadata":{'


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header; a missing header means JSON."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower() or JSON


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """Parse a request body as JSON or YAML; malformed input is a 400 naming the problem."""
    mt = media_type(content_type)
    if mt in (JSON, MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, "text/plain", "*/*"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"error decoding JSON body: {e}") from None
    if mt in (YAML, "application/x-yaml", "text/yaml", APPLY_PATCH):
        try:
            return yaml.safe_load(raw.decode("utf-8", errors="strict"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise BadRequest(f"error decoding YAML body: {e}") from None
    if mt == protobuf.MEDIA_TYPE:
        return protobuf.decode(raw)
    raise UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media types '
                               f'include: {JSON}, {YAML}; got "{mt}"')


def _storage_order(obj: dict) -> dict:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    ordered = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "metadata": meta}
    for k, v in obj.items():
        if k not in ordered:
            ordered[k] = v
    return ordered


def encode_for_storage(obj: dict) -> bytes:
    return orjson.dumps(_storage_order(obj))


def with_resource_version(data: bytes, rv: int) -> bytes:
    """Stored bytes with ``metadata.resourceVersion`` set, without decoding them."""
    return b"".join(_with_rv_parts(data, rv))


def _with_rv_parts(data: bytes, rv: int) -> tuple:
    """``with_resource_version(data, rv)`` as pieces to join, the stored bytes not copied."""
    i = data.find(_METADATA)
    if i < 0:  # not written by encode_for_storage; take the slow road
        obj = orjson.loads(data)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        return (orjson.dumps(obj),)
    j = i + len(_METADATA)
    sep = b"" if data[j:j + 1] == b"}" else b","
    view = memoryview(data)
    return view[:j], b'"resourceVersion":"%d"%s' % (rv, sep), view[j:]


def decode_stored(data: bytes, rv: int) -> dict:
    obj = orjson.loads(data)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return obj


def list_body(kind: str, api_version: str, rv: int, items: list[bytes], cont: str = "",
              remaining: int | None = None) -> bytes:
    """A list response of encoded items."""
    if not items:
        return _list_head(kind, api_version, rv, cont, remaining) + b"]}"
    # One join over the items and their separators: a large list is copied once.
    parts: list[bytes] = [b","] * (2 * len(items) + 1)
    parts[0] = _list_head(kind, api_version, rv, cont, remaining)
    parts[1::2] = items
    parts[-1] = b"]}"
    return b"".join(parts)


def stored_list_chunks(kind: str, api_version: str, rv: int, stored: list[tuple[bytes, int]], cont: str = "",
                       remaining: int | None = None, per_chunk: int = 500) -> Iterator[bytes]:
    """A list response of stored items, each ``(bytes, resourceVersion)``, in pieces of
    ``per_chunk`` items to be written as they are made: each item's resourceVersion is spliced in
    while its piece is joined, so every byte of a large list is copied once and no buffer of the
    whole list is needed."""
    head = _list_head(kind, api_version, rv, cont, remaining)
    if not stored:
        yield head + b"]}"
        return
    for at in range(0, len(stored), per_chunk):
        parts: list = [head if at == 0 else b","]
        add = parts.extend
        for data, item_rv in stored[at:at + per_chunk]:
            add(_with_rv_parts(data, item_rv))
            parts.append(b",")
        parts.pop()
        if at + per_chunk >= len(stored):
            parts.append(b"]}")
        yield b"".join(parts)


def _list_head(kind: str, api_version: str, rv: int, cont: str, remaining: int | None) -> bytes:
    """A list response up to the opening of its items."""
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    head = orjson.dumps({"kind": kind, "apiVersion": api_version, "metadata": meta})
    return head[:-1] + b',"items":['


def watch_line(event_type: str, data: bytes) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (event_type.encode(), data)
