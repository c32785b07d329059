"""Server-side apply: field ownership (``metadata.managedFields``) and the apply merge.

A field set is a set of paths; a path is a tuple of elements in Kubernetes' FieldsV1 spelling:
``f:<name>`` for a map key, ``k:<json of key fields>`` for an item of a keyed list, ``v:<json>``
for an item of a set, and ``.`` for "this list item itself". ``to_fields_v1``/``from_fields_v1``
convert to and from the nested dict stored in managedFields.

Every write records who set what: an apply owns exactly the fields in its configuration, an
ordinary update (PUT, PATCH) takes the fields it changed. An apply that changes a value owned by
another manager is a conflict unless forced; a field an applier owned before and now omits is
removed, unless another manager also owns it.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from api.errors import Cause, Conflict
from api.meta import now_rfc3339
from api.schema import ANY, PatchMeta

Path = tuple[str, ...]

# Identity and server-owned fields are never owned by a manager.
_SKIP_TOP = {"apiVersion", "kind"}
_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
              "generateName"}


# --- list shapes -------------------------------------------------------------------------

def _list_keys(meta: PatchMeta, items: list) -> tuple[str, ...] | None:
    """The key fields of a keyed list, or None for sets and atomic lists."""
    if meta.list_map_keys:
        return meta.list_map_keys
    if meta.merge_key and (meta.merges or meta.list_type == "map"):
        return (meta.merge_key,)
    return None


def _is_set(meta: PatchMeta, items: list) -> bool:
    if meta.list_type == "set":
        return True
    return meta.merges and not meta.merge_key and all(not isinstance(i, (dict, list)) for i in items)


# Item keys by (key field, value type, value) of single-key items (env vars, containers, ports
# by name): the same few names recur in object after object. Bounded; cleared when full.
_ITEM_KEYS: dict[tuple, str] = {}
_ITEM_KEYS_MAX = 8192


def _item_key(keys: tuple[str, ...], item: Any) -> str:
    if type(item) is not dict:
        return "v:" + orjson.dumps(item).decode()
    if len(keys) == 1:
        k = keys[0]
        if k not in item:
            return "k:{}"
        v = item[k]
        if type(v) is str or type(v) is int:
            memo = (k, type(v), v)
            got = _ITEM_KEYS.get(memo)
            if got is None:
                if len(_ITEM_KEYS) >= _ITEM_KEYS_MAX:
                    _ITEM_KEYS.clear()
                got = _ITEM_KEYS[memo] = "k:" + orjson.dumps({k: v}).decode()
            return got
        return "k:" + orjson.dumps({k: v}).decode()
    return "k:" + orjson.dumps({k: item.get(k) for k in keys if k in item}).decode()


# --- field sets ----------------------------------------------------------------------------

def field_set(obj: dict, meta: PatchMeta, *, subresource: str = "") -> set[Path]:
    """The leaf paths an object's content sets. For ``subresource='status'`` only status counts;
    otherwise status is left out (it belongs to the status writers)."""
    return set(field_values(obj, meta, subresource=subresource))


def field_values(obj: dict, meta: PatchMeta, *, subresource: str = "") -> dict[Path, Any]:
    """``field_set`` with the value at each path (``value_at(obj, path)``), in one walk."""
    out: dict[Path, Any] = {}
    for k, v in obj.items():
        if k in _SKIP_TOP:
            continue
        if (k == "status") != (subresource == "status"):
            continue
        if k == "metadata":
            if subresource == "status" or not isinstance(v, dict):
                continue
            for mk, mv in v.items():
                if mk not in _SKIP_META:
                    _walk(mv, meta.child("metadata").child(mk), ("f:metadata", "f:" + mk), out)
            continue
        _walk(v, meta.child(k), ("f:" + k,), out)
    return out


def _walk(value: Any, meta: PatchMeta, path: Path, out: dict[Path, Any]) -> None:
    if type(value) is dict and value:
        children = meta._children
        for k, v in value.items():
            _walk(v, children.get(k) or meta.child(k), path + ("f:" + k,), out)
        return
    if type(value) is list and value:
        keys = _list_keys(meta, value)
        if keys is not None and all(type(i) is dict for i in value):
            item_meta = meta.items()
            for item in value:
                ipath = path + (_item_key(keys, item),)
                # A repeated key: the paths are the union, the values the first item's (as
                # value_at finds them), where it has them.
                out.setdefault(ipath + (".",), item)
                for k, v in item.items():
                    _walk(v, item_meta.child(k), ipath + ("f:" + k,), out)
            return
        if _is_set(meta, value):
            for item in value:
                out.setdefault(path + (_item_key((), item),), item)
            return
    out.setdefault(path, value)


def field_tree(obj: dict, meta: PatchMeta, *, subresource: str = "") -> dict:
    """``to_fields_v1(field_set(obj, meta, subresource=...))``, built in one walk: maps are visited
    in key order, so every level comes out sorted without sorting the paths."""
    root: dict = {}
    for k in sorted(obj):
        if k in _SKIP_TOP:
            continue
        if (k == "status") != (subresource == "status"):
            continue
        v = obj[k]
        if k == "metadata":
            if subresource == "status" or not isinstance(v, dict):
                continue
            md_meta = meta.child("metadata")
            md_node = {}
            for mk in sorted(v):
                if mk not in _SKIP_META:
                    mv = v[mk]
                    md_node["f:" + mk] = _tree(mv, md_meta.child(mk)) if mv and isinstance(mv, dict | list) else {}
            if md_node:
                root["f:metadata"] = md_node
            continue
        root["f:" + k] = _tree(v, meta.child(k)) if v and isinstance(v, dict | list) else {}
    return root


def _tree(value: Any, meta: PatchMeta) -> dict:
    """The sorted FieldsV1 tree under a non-empty map or list."""
    if type(value) is dict:
        return _tree_map(value, meta)
    keys = _list_keys(meta, value)
    if keys is not None and all(type(i) is dict for i in value):
        item_meta = meta.items()
        node: dict = {}
        for item in value:
            ik = _item_key(keys, item)
            inode = _tree_map(item, item_meta, {".": {}})
            if ik in node:                      # two items with the same key: one merged entry
                inode = to_fields_v1(from_fields_v1(node[ik]) | from_fields_v1(inode))
            node[ik] = inode
        return _sorted_keys(node)
    if _is_set(meta, value):
        return _sorted_keys({_item_key((), item): {} for item in value})
    return {}


# Trees of maps whose values are all leaves (env vars, ports, labels, resource lists), by
# (list item?, keys in order): such a tree depends on the keys alone. The trees are shared by
# the objects that use them, so nothing may change a FieldsV1 tree in place (``_without`` copies).
_LEAF_MAPS: dict[tuple, dict] = {}
_LEAF_MAPS_MAX = 4096


def _tree_map(value: dict, meta: PatchMeta, node: dict | None = None) -> dict:
    """The tree of a map; ``node`` is ``{".": {}}`` for an item of a keyed list."""
    for v in value.values():
        if v and (type(v) is dict or type(v) is list):
            break
    else:
        key = (node is not None, *value)
        got = _LEAF_MAPS.get(key)
        if got is None:
            got = {".": {}} if node is not None else {}
            for k in sorted(value):
                got["f:" + k] = {}
            if len(_LEAF_MAPS) < _LEAF_MAPS_MAX:
                _LEAF_MAPS[key] = got
        return got
    if node is None:
        node = {}
    children = meta._children
    for k in sorted(value):
        v = value[k]
        # Leaves (scalars, empty maps and lists) are most fields: no schema step for them.
        if v and (type(v) is dict or type(v) is list):
            child = children.get(k) or meta.child(k)
            node["f:" + k] = _tree(v, child)
        else:
            node["f:" + k] = {}
    return node


def _sorted_keys(node: dict) -> dict:
    if len(node) > 1:
        keys = list(node)
        ordered = sorted(keys)
        if keys != ordered:
            return {k: node[k] for k in ordered}
    return node


def to_fields_v1(paths: set[Path]) -> dict:
    root: dict = {}
    for p in sorted(paths):
        node = root
        for el in p:
            node = node.setdefault(el, {})
    return root


def from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    _leaves(tree or {}, prefix, out)
    return out


def _leaves(tree: dict, prefix: Path, out: set[Path]) -> None:
    for k, v in tree.items():
        if v:
            _leaves(v, prefix + (k,), out)
        else:
            out.add(prefix + (k,))


def _without(tree: dict, paths: set[Path]) -> dict:
    """``to_fields_v1(from_fields_v1(tree) - paths)`` without leaving the tree: the leaves at
    ``paths`` are cut and the branches they leave empty pruned. ``tree`` is not modified."""
    cut = [p for p in paths if _leaf_at(tree, p)]
    if not cut:
        return tree
    out = orjson.loads(orjson.dumps(tree))
    for p in cut:
        trail = [out]
        for el in p[:-1]:
            trail.append(trail[-1][el])
        del trail[-1][p[-1]]
        for depth in range(len(p) - 1, 0, -1):      # prune branches left empty
            if trail[depth]:
                break
            del trail[depth - 1][p[depth - 1]]
    return out


def _leaf_at(tree: dict, path: Path) -> bool:
    node = tree
    for el in path:
        node = node.get(el)
        if node is None:
            return False
    return not node


# --- reading and editing objects by path -------------------------------------------------

_MISSING = object()


def _find_item(lst: list, key: str) -> int:
    for i, item in enumerate(lst):
        if key.startswith("v:"):
            if "v:" + orjson.dumps(item).decode() == key:
                return i
        elif isinstance(item, dict):
            want = orjson.loads(key[2:])
            if all(item.get(k) == v for k, v in want.items()):
                return i
    return -1


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for el in path:
        if el == ".":
            return node
        if el.startswith("f:"):
            if not isinstance(node, dict) or el[2:] not in node:
                return _MISSING
            node = node[el[2:]]
        else:
            if not isinstance(node, list):
                return _MISSING
            i = _find_item(node, el)
            if i < 0:
                return _MISSING
            node = node[i]
            if el.startswith("v:"):
                return node
    return node


def remove_path(obj: Any, path: Path) -> None:
    """Delete the field (or list item, for a path ending in ``.`` or ``v:``) at ``path``."""
    if not path:
        return
    parent = obj
    *head, last = path
    if last == ".":
        head, last = head[:-1], head[-1]
    for el in head:
        if el.startswith("f:"):
            if not isinstance(parent, dict) or el[2:] not in parent:
                return
            parent = parent[el[2:]]
        else:
            if not isinstance(parent, list):
                return
            i = _find_item(parent, el)
            if i < 0:
                return
            parent = parent[i]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        i = _find_item(parent, last)
        if i >= 0:
            del parent[i]


def _remove_all(obj: Any, paths: set[Path]) -> None:
    """Remove fields and list items; whole items first (their key fields locate them), then the
    remaining fields deepest first."""
    items = sorted((p for p in paths if p[-1] == "."), key=len)
    for p in items:
        remove_path(obj, p)
    gone = [p[:-1] for p in items]
    for p in sorted((p for p in paths if p[-1] != "."), key=len, reverse=True):
        if not any(p[:len(g)] == g for g in gone):
            remove_path(obj, p)


# --- merge -----------------------------------------------------------------------------

def merge(current: Any, applied: Any, meta: PatchMeta) -> Any:
    """``applied`` laid over ``current``: maps merge, keyed lists merge by key, sets union,
    everything else is replaced."""
    if isinstance(current, dict) and isinstance(applied, dict):
        out = dict(current)
        for k, v in applied.items():
            out[k] = merge(current[k], v, meta.child(k)) if k in current else copy.deepcopy(v)
        return out
    if isinstance(current, list) and isinstance(applied, list):
        keys = _list_keys(meta, applied)
        if keys is not None and all(isinstance(i, dict) for i in current + applied):
            out = list(current)
            item_meta = meta.items()
            for item in applied:
                i = _find_item(out, _item_key(keys, item))
                if i >= 0:
                    out[i] = merge(out[i], item, item_meta)
                else:
                    out.append(copy.deepcopy(item))
            return out
        if _is_set(meta, applied) and all(not isinstance(i, (dict, list)) for i in current):
            return list(current) + [i for i in applied if i not in current]
    return copy.deepcopy(applied)


# --- managedFields bookkeeping ------------------------------------------------------------

def _entries(obj: dict) -> list[dict]:
    return [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or []]


def _entry_paths(e: dict) -> set[Path]:
    return from_fields_v1(e.get("fieldsV1") or {})


def _set_entries(obj: dict, entries: list[dict]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    md = obj.setdefault("metadata", {})
    if kept:
        md["managedFields"] = kept
    else:
        md.pop("managedFields", None)


def _entry(manager: str, operation: str, api_version: str, paths: set[Path] | dict, subresource: str) -> dict:
    """A managedFields entry; ``paths`` is a field set, or its FieldsV1 tree already built."""
    fields = paths if isinstance(paths, dict) else to_fields_v1(paths)
    e = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now_rfc3339(),
         "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        e["subresource"] = subresource
    return e


def _same_entry(e: dict, manager: str, operation: str, subresource: str) -> bool:
    return (e.get("manager") == manager and e.get("operation") == operation
            and (e.get("subresource") or "") == subresource)


def _display(path: Path) -> str:
    out = ""
    for el in path:
        if el == ".":
            continue
        if el.startswith("f:"):
            out += "." + el[2:]
        else:
            out += "[" + el[2:] + "]" if el.startswith("k:") else "[" + el[2:] + "]"
    return out


def apply(current: dict | None, applied: dict, meta: PatchMeta, *, manager: str, force: bool,
          api_version: str, subresource: str = "") -> dict:
    """The object after ``manager`` applies ``applied`` to ``current`` (None: create).

    Raises ``Conflict`` with FieldManagerConflict causes when another manager owns a field whose
    value the apply would change, unless ``force``.
    """
    new_set = field_set(applied, meta, subresource=subresource)
    if current is None:
        obj = copy.deepcopy(applied)
        _set_entries(obj, [_entry(manager, "Apply", api_version, new_set, subresource)])
        return obj
    entries = _entries(current)
    prev: set[Path] = set()
    conflicts: list[tuple[str, Path]] = []
    for e in entries:
        paths = _entry_paths(e)
        if _same_entry(e, manager, "Apply", subresource):
            prev = paths
            continue
        overlap = paths & new_set
        changed = {p for p in overlap if p[-1] != "." and value_at(current, p) != value_at(applied, p)}
        if changed and not force:
            conflicts.extend((e.get("manager", ""), p) for p in sorted(changed))
        elif changed:
            e["fieldsV1"] = to_fields_v1(paths - changed)
    if conflicts:
        causes = [Cause("FieldManagerConflict", f'conflict with "{m}"', _display(p)) for m, p in conflicts]
        owners = sorted({m for m, _ in conflicts})
        raise Conflict(f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
                       + "; ".join(f'conflict with "{m}": {_display(p)}' for m, p in conflicts)
                       + f" (managers: {', '.join(owners)})", causes=causes)
    obj = merge(current, {k: v for k, v in applied.items() if k not in ("metadata",)}, meta)
    md_applied = {k: v for k, v in (applied.get("metadata") or {}).items() if k not in _SKIP_META}
    obj["metadata"] = merge(current.get("metadata") or {}, md_applied, meta.child("metadata"))
    others: set[Path] = set()
    for e in entries:
        if not _same_entry(e, manager, "Apply", subresource):
            others |= _entry_paths(e)
    _remove_all(obj, prev - new_set - others)
    entries = [e for e in entries if not _same_entry(e, manager, "Apply", subresource)]
    entries.append(_entry(manager, "Apply", api_version, new_set, subresource))
    _set_entries(obj, entries)
    return obj


def record_update(old: dict | None, new: dict, meta: PatchMeta, *, manager: str, api_version: str,
                  subresource: str = "") -> None:
    """After an ordinary write (create, PUT, PATCH), give ``manager`` the fields it set or changed,
    taking them from other managers; in place on ``new``."""
    if old is None:
        # A create: the manager owns everything the object sets.
        _set_entries(new, [_entry(manager, "Update", api_version,
                                  field_tree(new, meta, subresource=subresource), subresource)])
        return
    new_values = field_values(new, meta, subresource=subresource)
    old_values = field_values(old, meta, subresource=subresource)
    changed = {p for p, v in new_values.items() if old_values.get(p, _MISSING) != v}
    entries = _entries(old)
    # Fields the write removed are owned by nobody any more.
    gone = old_values.keys() - new_values.keys()
    changed_or_gone = changed | gone
    if changed_or_gone:
        for e in entries:
            if not _same_entry(e, manager, "Update", subresource):
                e["fieldsV1"] = _without(e.get("fieldsV1") or {}, changed_or_gone)
    if not changed:
        _set_entries(new, entries)
        return
    mine: set[Path] = set()
    for e in entries:
        if _same_entry(e, manager, "Update", subresource):
            mine = {p for p in _entry_paths(e) if p in new_values}
    entries = [e for e in entries if not _same_entry(e, manager, "Update", subresource)]
    entries.append(_entry(manager, "Update", api_version, mine | changed, subresource))
    _set_entries(new, entries)


__all__ = ["ANY", "apply", "field_set", "field_tree", "from_fields_v1", "merge", "record_update", "to_fields_v1"]
