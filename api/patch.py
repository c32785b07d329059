"""The three PATCH formats of the Kubernetes API, and the strategic patches client-side apply sends.

- ``json_patch(doc, ops)``: RFC 6902 (``application/json-patch+json``).
- ``merge_patch(doc, patch)``: RFC 7386 (``application/merge-patch+json``).
- ``strategic_merge_patch(doc, patch, meta)``: Kubernetes' strategic merge patch
  (``application/strategic-merge-patch+json``), steered by ``api.schema.merge_info``.
- ``create_two_way_merge_patch`` / ``create_three_way_merge_patch``: the strategic patch that turns
  one object into another, as ``kubectl apply`` computes it from last-applied, the manifest and the
  live object.

Every function returns new objects and never mutates its arguments (callers pass cached objects).
Errors follow the API server: a patch body that is malformed is ``BadRequest`` (400), and so is a
strategic patch with a bad directive (a key outside its ``$retainKeys``, an item without its merge
key); a well-formed JSON patch that cannot be applied (missing path, failed ``test``) is
``Invalid`` (422); more than 10000 JSON patch operations is ``RequestEntityTooLarge`` (413).

Strategic merge follows Kubernetes 1.32 (checked against ``kubectl patch --local``) except where
noted: list items are matched by all of their ``x-kubernetes-list-map-keys`` (container ports by
containerPort *and* protocol, so 53/TCP and 53/UDP are two items) with a key the patch item omits
matching any value; ``$patch: merge`` is accepted as a no-op where Kubernetes refuses it; and a
new subtree is cleaned of nulls and directives, where Kubernetes may store or drop it raw.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from api.errors import BadRequest, Invalid, RequestEntityTooLarge


class PatchMeta(Protocol):
    """What strategic merge reads at one place of an object (``api.schema.PatchMeta`` provides it)."""

    strategies: frozenset[str]          # "merge", "retainKeys", "replace"
    merge_key: str | None
    list_map_keys: tuple[str, ...]
    retain_keys: bool

    @property
    def merges(self) -> bool: ...

    @property
    def replaces(self) -> bool: ...

    def child(self, name: str) -> PatchMeta: ...

    def items(self) -> PatchMeta: ...


class _NoMeta:
    """No knowledge of the kind: maps merge, lists are replaced (merge patch semantics)."""

    strategies: frozenset[str] = frozenset()
    merge_key = None
    list_type = None
    list_map_keys: tuple[str, ...] = ()
    retain_keys = False
    merges = False
    replaces = False

    def child(self, name: str) -> _NoMeta:
        return self

    def items(self) -> _NoMeta:
        return self


ANY: PatchMeta = _NoMeta()

MAX_JSON_PATCH_OPERATIONS = 10000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"

# Values the API server fills in for list-map keys that clients may omit. Without them an item
# written as {"containerPort": 80} would never match the stored {"containerPort": 80,
# "protocol": "TCP"} when ports are keyed by containerPort+protocol.
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

# --------------------------------------------------------------------------- helpers

def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _copy_doc(doc: Any) -> Any:
    """A deep copy of a whole document; a JSON round trip in C is several times faster."""
    try:
        return orjson.loads(orjson.dumps(doc))
    except (TypeError, orjson.JSONEncodeError):      # not plain JSON (tuples, big ints): copy by hand
        return _copy(doc)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (isinstance(b, dict) and len(a) == len(b)
                and all(k in b and json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(json_equal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(b, dict | list):
        return False
    return bool(a == b)


def _contains(items: list[Any], value: Any) -> bool:
    return any(json_equal(x, value) for x in items)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------- RFC 6902

def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) and return the new document."""
    if not isinstance(ops, list):
        raise BadRequest("json patch must be a list of operations, got " + type(ops).__name__)
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    for op in ops:
        if not isinstance(op, dict):
            raise BadRequest(f"json patch operation must be an object, got {_brief(op)}")
    result = _copy_doc(doc)
    for op in ops:
        result = _apply_op(result, op)
    return result


def _pointer(path: Any, what: str = "path") -> list[str]:
    if not isinstance(path, str):
        raise Invalid(f"operation missing {what} field" if path is None else f"{what} must be a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise Invalid(f'invalid JSON pointer "{path}": must be empty or start with "/"')
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(token: str, size: int, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise Invalid(f"invalid array index {token!r} in path {path}")
    i = int(token)
    if i > size or (i == size and not allow_end):
        raise Invalid(f"array index {i} out of bounds in path {path}")
    return i


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list) and t.isdigit() and int(t) < len(node) and (t == "0" or t[0] != "0"):
            node = node[int(t)]
        else:
            raise Invalid(f"{op} operation does not apply: doc is missing path: {path}")
    if not isinstance(node, dict | list):
        raise Invalid(f"{op} operation does not apply: doc is missing path: {path}")
    return node


def _get(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise Invalid(f"{op} operation does not apply: doc is missing key: {path}")
        return parent[last]
    return parent[_index(last, len(parent), path, allow_end=False)]


def _add(doc: Any, tokens: list[str], value: Any, op: str, path: str) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(last, len(parent), path, allow_end=True), value)
    return doc


def _remove(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    if not tokens:
        raise Invalid(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise Invalid(f"{op} operation does not apply: doc is missing key: {path}")
        return parent.pop(last)
    return parent.pop(_index(last, len(parent), path, allow_end=False))


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    path = op.get("path")
    tokens = _pointer(path)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise Invalid(f"{kind} operation on {path} is missing its value")
    if kind == "add":
        return _add(doc, tokens, _copy(op["value"]), kind, path)
    if kind == "remove":
        _remove(doc, tokens, kind, path)
        return doc
    if kind == "replace":
        _get(doc, tokens, kind, path)              # the target must exist
        if not tokens:
            return _copy(op["value"])
        parent = _parent(doc, tokens, kind, path)
        if isinstance(parent, dict):
            parent[tokens[-1]] = _copy(op["value"])
        else:
            parent[_index(tokens[-1], len(parent), path, allow_end=False)] = _copy(op["value"])
        return doc
    if kind == "test":
        if not json_equal(_get(doc, tokens, kind, path), op["value"]):
            raise Invalid(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        source = op.get("from")
        from_tokens = _pointer(source, "from")
        if kind == "move":
            if tokens == from_tokens:
                _get(doc, tokens, kind, source)
                return doc
            if tokens[:len(from_tokens)] == from_tokens:
                raise Invalid(f"move operation cannot move {source} into its own child {path}")
            return _add(doc, tokens, _remove(doc, from_tokens, kind, source), kind, path)
        value = _copy(_get(doc, from_tokens, kind, source))
        return _add(doc, tokens, value, kind, path)
    raise Invalid(f"unexpected json patch operation {kind!r}")


# --------------------------------------------------------------------------- RFC 7386

def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch: maps merge recursively, ``null`` deletes, lists replace."""
    if not isinstance(patch, dict):
        raise BadRequest(f"merge patch must be a JSON object, got {type(patch).__name__}")
    return _merge(_copy_doc(doc) if isinstance(doc, dict) else {}, patch)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict):
            current = target.get(k)
            target[k] = _merge(current if isinstance(current, dict) else {}, v)
        else:
            target[k] = _copy(v)
    return target


# --------------------------------------------------------------------------- strategic merge

def strategic_merge_patch(doc: Any, patch: Any, meta: PatchMeta | None = None) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch.

    ``meta`` is the kind's ``merge_info``; without it (or for fields it does not know) maps merge as
    in a merge patch and lists are replaced. Lists whose field says ``merge`` merge by their key
    (container ``ports`` by containerPort+protocol, ``env`` by name, ...) or, for primitive items,
    as a set. Directives: ``$patch: delete|replace|merge`` on maps and list items,
    ``$setElementOrder/<f>``, ``$deleteFromPrimitiveList/<f>``, ``$retainKeys``.
    """
    if not isinstance(patch, dict):
        raise BadRequest(f"strategic merge patch must be a JSON object, got {type(patch).__name__}")
    return _smp_map(_copy_doc(doc) if isinstance(doc, dict) else {}, patch, meta or ANY)


def _smp_map(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (which this call owns and may change)."""
    directive = patch.get(_DIRECTIVE)
    if directive is not None:
        if directive == "delete":
            return {}                      # the field stays, emptied, as the API server leaves it
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
            return _smp_map({}, rest, meta)
        if directive != "merge":
            raise BadRequest(f"Unknown patch type: {directive} in map: {_brief(patch)}")

    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise BadRequest(f"invalid patch: $retainKeys must be a list of strings: {_brief(retain)}")
        for k, v in patch.items():
            if v is not None and not k.startswith("$") and k not in retain:
                raise BadRequest(f"invalid patch format of retainKeys: {k} is not in $retainKeys {retain}")
        for k in [k for k in original if k not in retain]:
            del original[k]

    orders: dict[str, list[Any]] = {}
    fields: list[str] = []
    for k, v in patch.items():
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE):]
            if not isinstance(v, list):
                raise BadRequest(f"invalid patch: {k} must be a list: {_brief(v)}")
            current = original.get(name)
            if isinstance(current, list):
                original[name] = [x for x in current if not _contains(v, x)]
        elif k.startswith(_ORDER):
            if not isinstance(v, list):
                raise BadRequest(f"invalid patch: {k} must be a list: {_brief(v)}")
            orders[k[len(_ORDER):]] = v
        elif k not in (_DIRECTIVE, _RETAIN_KEYS):
            fields.append(k)

    for k in fields:
        value = patch[k]
        if value is None:
            original.pop(k, None)
            continue
        original[k] = _smp_value(original.get(k), value, meta.child(k), orders.pop(k, None))
    for k, order in orders.items():         # a new order for a list the patch leaves alone
        current = original.get(k)
        child = meta.child(k)
        if isinstance(current, list) and child.merges:
            original[k] = _smp_list(current, [], child, order)
    return original


def _smp_value(current: Any, value: Any, meta: PatchMeta, order: list[Any] | None) -> Any:
    if isinstance(value, dict):
        if meta.replaces:
            return _smp_map({}, value, meta)
        return _smp_map(current if isinstance(current, dict) else {}, value, meta)
    if isinstance(value, list):
        return _smp_list(current if isinstance(current, list) else [], value, meta, order)
    return value


def _list_keys(meta: PatchMeta) -> tuple[str, ...]:
    key = meta.merge_key
    if key and key in meta.list_map_keys:
        return (key,) + tuple(k for k in meta.list_map_keys if k != key)
    return (key,) if key else ()


def _identity(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The keys naming ``item``, defaults filled in so the server cannot match another item."""
    return {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys if k in item or k in _KEY_DEFAULTS}


def _same_item(keys: tuple[str, ...]):
    """``where(x, items)`` between whole objects: every key equal, defaults filled on both sides."""
    def where(x: Any, items: list[Any]) -> int:
        if isinstance(x, dict):
            want = _identity(x, keys)
            for i, y in enumerate(items):
                if isinstance(y, dict) and json_equal(_identity(y, keys), want):
                    return i
        return -1
    return where


def _matches(entry: dict[str, Any], item: dict[str, Any], keys: tuple[str, ...]) -> int:
    """2 if ``entry`` names ``item`` exactly, 1 loosely, 0 not at all.

    A key the entry omits matches anything (kubectl names items by their merge key alone), but
    only loosely when the item's value differs from the key's default; a key the item omits
    holds its default (the server fills it in).
    """
    exact = 2
    for k in keys:
        have = item.get(k, _KEY_DEFAULTS.get(k))
        if k in entry:
            if not json_equal(entry[k], have):
                return 0
        elif k in _KEY_DEFAULTS and have != _KEY_DEFAULTS[k]:
            exact = 1
    return exact


def _find(entry: dict[str, Any], items: list[Any], keys: tuple[str, ...]) -> int:
    """Index of the item ``entry`` names (an exact match before a loose one), or -1."""
    loose = -1
    for i, item in enumerate(items):
        if isinstance(item, dict):
            m = _matches(entry, item, keys)
            if m == 2:
                return i
            if m == 1 and loose < 0:
                loose = i
    return loose


def _named_by(keys: tuple[str, ...]):
    """``where(x, entries)``: the index of the first entry naming item ``x``, or -1."""
    def where(x: Any, entries: list[Any]) -> int:
        if isinstance(x, dict):
            for i, e in enumerate(entries):
                if isinstance(e, dict) and _matches(e, x, keys):
                    return i
        return -1
    return where


def _smp_list(current: list[Any], patch: list[Any], meta: PatchMeta, order: list[Any] | None) -> list[Any]:
    if not meta.merges:
        return _copy(patch)                   # atomic: the patch's list is the new list
    keys = _list_keys(meta)
    maps = keys and any(isinstance(x, dict) for x in (*patch, *current))
    if not maps:
        return _smp_primitive_list(current, patch, order)
    item_meta = meta.items()
    for item in patch:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid patch: list item {_brief(item)} is not a map; "
                             f"items are merged by key {keys[0]}")
    if any(item.get(_DIRECTIVE) == "replace" for item in patch):
        # A {"$patch": "replace"} element: the other elements are the whole new list.
        return [_smp_map({}, x, item_meta) for x in patch if x.get(_DIRECTIVE) not in ("replace", "delete")]

    result = list(current)
    patched: list[dict[str, Any]] = []
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if keys[0] not in item:
            raise BadRequest(f"map: {_brief(item)} does not contain declared merge key: {keys[0]}")
        if directive == "delete":
            result = [x for x in result if _find(item, [x], keys) < 0]
            continue
        if directive not in (None, "merge"):
            raise BadRequest(f"Unknown patch type: {directive} in map: {_brief(item)}")
        i = _find(item, result, keys)
        if i >= 0:
            result[i] = _smp_map(result[i] if isinstance(result[i], dict) else {}, item, item_meta)
        else:
            result.append(_smp_map({}, item, item_meta))
        patched.append(item)

    if order is not None:
        for entry in order:
            if not isinstance(entry, dict) or keys[0] not in entry:
                raise BadRequest(f"invalid patch: $setElementOrder entries must be maps holding "
                                 f"the merge key {keys[0]}: {_brief(entry)}")
    return _normalize_order(result, order if order is not None else patched, current, _named_by(keys))


def _smp_primitive_list(current: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    merged: list[Any] = []
    for x in (*current, *patch):
        if isinstance(x, dict | list):
            raise BadRequest(f"invalid patch: {_brief(x)} in a list of primitive values")
        if not _contains(merged, x):
            merged.append(_copy(x))

    def where(x: Any, lst: list[Any]) -> int:
        return next((i for i, y in enumerate(lst) if json_equal(x, y)), -1)

    return _normalize_order(merged, order if order is not None else patch, current, where)


def _normalize_order(merged: list[Any], patch_order: list[Any], server_order: list[Any], where) -> list[Any]:
    """Order a merged list: items the patch names in the patch's order, the others where they were.

    The two runs are interleaved: a server-only item goes before a named one only if both were
    stored and it came first, so new items are placed before server-only items that follow them.
    """
    named = [x for x in merged if where(x, patch_order) >= 0]
    named.sort(key=lambda x: where(x, patch_order))
    others = [x for x in merged if where(x, patch_order) < 0]
    out: list[Any] = []
    i = j = 0
    while i < len(named) or j < len(others):
        if j >= len(others):
            out.append(named[i])
            i += 1
        elif i >= len(named):
            out.append(others[j])
            j += 1
        else:
            li, ri = where(named[i], server_order), where(others[j], server_order)
            if li >= 0 and ri >= 0 and ri < li:
                out.append(others[j])
                j += 1
            else:
                out.append(named[i])
                i += 1
    return out


# --------------------------------------------------------------------------- computing patches

def create_two_way_merge_patch(original: dict[str, Any], modified: dict[str, Any],
                               meta: PatchMeta | None = None) -> dict[str, Any]:
    """The strategic merge patch that turns ``original`` into ``modified``."""
    return _diff_maps(original or {}, modified or {}, meta or ANY, False, False)


def create_three_way_merge_patch(last_applied: dict[str, Any] | None, modified: dict[str, Any],
                                 current: dict[str, Any], meta: PatchMeta | None = None) -> dict[str, Any]:
    """The patch ``kubectl apply`` sends: make ``current`` agree with ``modified``.

    Fields that ``modified`` sets are added or changed wherever ``current`` differs; fields are
    deleted only if the previous apply (``last_applied``) set them and ``modified`` no longer does,
    so fields others wrote (defaults, controllers) survive. ``{}`` means nothing to do.
    """
    meta = meta or ANY
    modified = modified or {}
    delta = _diff_maps(current or {}, modified, meta, True, False)
    deletions = _diff_maps(last_applied or {}, modified, meta, False, True)
    return _combine(deletions, delta, meta)


def _diff_maps(original: dict[str, Any], modified: dict[str, Any], meta: PatchMeta,
               ignore_deletions: bool, ignore_changes: bool) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for k, new in modified.items():
        old = original.get(k)
        if new is None:
            if old is not None and not ignore_deletions:
                patch[k] = None
            continue
        if k not in original or old is None:
            if not ignore_changes:
                patch[k] = _copy(new)
            continue
        child = meta.child(k)
        if isinstance(old, dict) and isinstance(new, dict) and not child.replaces:
            sub = _diff_maps(old, new, child, ignore_deletions, ignore_changes)
            if sub:
                patch[k] = sub
        elif isinstance(old, list) and isinstance(new, list):
            _diff_lists(k, old, new, child, ignore_deletions, ignore_changes, patch)
        elif not ignore_changes and not json_equal(old, new):
            patch[k] = _copy(new)
    if not ignore_deletions:
        for k, old in original.items():
            if k not in modified and old is not None:
                patch[k] = None
    if meta.retain_keys and patch:
        patch[_RETAIN_KEYS] = sorted(k for k, v in modified.items() if v is not None)
    return patch


def _same_relative_order(old: list[Any], new: list[Any], where) -> bool:
    common_old = [x for x in old if where(x, new) >= 0]
    common_new = [x for x in new if where(x, old) >= 0]
    return all(where(a, [b]) == 0 for a, b in zip(common_old, common_new, strict=False))


def _diff_lists(k: str, old: list[Any], new: list[Any], meta: PatchMeta, ignore_deletions: bool,
                ignore_changes: bool, patch: dict[str, Any]) -> None:
    keys = _list_keys(meta)
    items = (*old, *new)
    if not meta.merges or any(isinstance(x, list) for x in items) or (
            keys and not all(isinstance(x, dict) for x in items)) or (
            not keys and any(isinstance(x, dict) for x in items)):
        if not ignore_changes and not json_equal(old, new):
            patch[k] = _copy(new)
        return
    if keys:
        where = _same_item(keys)
        item_meta = meta.items()
        entries: list[Any] = []
        for item in new:
            i = where(item, old)
            if i < 0:
                if not ignore_changes:
                    entries.append(_copy(item))
                continue
            sub = _diff_maps(old[i], item, item_meta, ignore_deletions, ignore_changes)
            if sub:
                entries.append({**_identity(item, keys), **sub})
        if not ignore_deletions:
            for item in old:
                if where(item, new) < 0:
                    entries.append({**_identity(item, keys), _DIRECTIVE: "delete"})
        if entries:
            patch[k] = entries
        if entries or (not ignore_changes and not _same_relative_order(old, new, where)):
            patch[_ORDER + k] = [_identity(x, keys) for x in new]
        return

    def where_value(x: Any, lst: list[Any]) -> int:
        return next((i for i, y in enumerate(lst) if json_equal(x, y)), -1)

    added = [] if ignore_changes else [_copy(x) for x in new if not _contains(old, x)]
    removed = [] if ignore_deletions else [_copy(x) for x in old if not _contains(new, x)]
    if added:
        patch[k] = added
    if removed:
        patch[_DELETE_PRIMITIVE + k] = removed
    if added or removed or (not ignore_changes and not _same_relative_order(old, new, where_value)):
        patch[_ORDER + k] = _copy(new)


def _combine(base: dict[str, Any], extra: dict[str, Any], meta: PatchMeta) -> dict[str, Any]:
    """One patch doing what both do; the two never disagree on a field (see the three-way diff)."""
    out = _copy(base)
    for k, v in extra.items():
        if k not in out or out[k] is None or v is None:
            out[k] = _copy(v)
            continue
        have = out[k]
        if k.startswith(_ORDER):
            out[k] = _copy(v)
        elif k == _RETAIN_KEYS or k.startswith(_DELETE_PRIMITIVE):
            out[k] = have + [x for x in v if not _contains(have, x)]
        elif isinstance(have, dict) and isinstance(v, dict):
            out[k] = _combine(have, v, meta.child(k))
        elif isinstance(have, list) and isinstance(v, list):
            child = meta.child(k)
            keys = _list_keys(child)
            if child.merges and keys and all(isinstance(x, dict) for x in (*have, *v)):
                rest = list(have)
                merged = []
                for item in v:
                    i = next((n for n, x in enumerate(rest)
                              if _identity(x, keys) == _identity(item, keys)
                              and _DIRECTIVE not in x and _DIRECTIVE not in item), -1)
                    if i >= 0:
                        merged.append(_combine(rest.pop(i), item, child.items()))
                    else:
                        merged.append(_copy(item))
                out[k] = merged + rest
            else:
                out[k] = have + [_copy(x) for x in v if not _contains(have, x)]
        else:
            out[k] = _copy(v)
    return out
