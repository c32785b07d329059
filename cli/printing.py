"""Rendering as kubectl does: aligned tables, YAML/JSON documents, ``-o name``, ages.

Tables come from the server (``meta.k8s.io/v1`` Table); this module only lays them out, adding the
columns kubectl adds itself (NAMESPACE for ``-A``, LABELS for ``--show-labels``, ``-L`` columns).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml

from api.registry import ResourceInfo

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
PADDING = 3


def layout(rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    """Rows of cells as aligned lines (tabwriter with padding 3; the last cell is not padded)."""
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    w = list(widths or [])
    w += [0] * (ncols - len(w))
    for r in rows:
        for i, cell in enumerate(r):
            w[i] = max(w[i], len(cell))
    lines = []
    for r in rows:
        parts = [cell.ljust(w[i] + PADDING) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        # Like Go's tabwriter, an empty last cell leaves the padding of the one before it.
        lines.append("".join(parts))
    return lines


def widths_of(rows: list[list[str]]) -> list[int]:
    w: list[int] = []
    for r in rows:
        for i, cell in enumerate(r):
            if i >= len(w):
                w.append(0)
            w[i] = max(w[i], len(cell))
    return w


def cell_text(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def labels_text(labels: dict[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class TableView:
    """Turns Table responses into printable rows with kubectl's extra columns."""

    def __init__(self, *, wide: bool = False, all_namespaces: bool = False, show_labels: bool = False,
                 label_columns: list[str] | None = None, name_prefix: str = "", show_kind: bool = False):
        self.wide = wide
        self.all_namespaces = all_namespaces
        self.show_labels = show_labels
        self.label_columns = label_columns or []
        self.name_prefix = name_prefix
        self.columns: list[dict[str, Any]] = []
        self.show_kind = show_kind

    def set_columns(self, table: dict[str, Any]) -> None:
        if table.get("columnDefinitions"):
            self.columns = table["columnDefinitions"]

    def _visible(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if self.wide or int(c.get("priority") or 0) == 0]

    def header(self) -> list[str]:
        names = [str(self.columns[i].get("name", "")).upper() for i in self._visible()]
        if self.all_namespaces:
            names.insert(0, "NAMESPACE")
        names += [c.split("/")[-1].upper() for c in self.label_columns]
        if self.show_labels:
            names.append("LABELS")
        return names

    def row(self, row: dict[str, Any]) -> list[str]:
        cells = row.get("cells") or []
        meta = ((row.get("object") or {}).get("metadata")) or {}
        out = []
        for i in self._visible():
            text = cell_text(cells[i]) if i < len(cells) else ""
            if self.name_prefix and self.columns[i].get("format") == "name":
                text = self.name_prefix + text
            out.append(text)
        if self.all_namespaces:
            out.insert(0, meta.get("namespace") or "")
        labels = meta.get("labels") or {}
        out += [labels.get(c, "") for c in self.label_columns]
        if self.show_labels:
            out.append(labels_text(labels))
        return out


def with_type(obj: dict[str, Any], info: ResourceInfo) -> dict[str, Any]:
    """The object with kind and apiVersion filled in (list items come without them)."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {"apiVersion": info.api_version, "kind": info.kind, **{k: v for k, v in obj.items()
                                                                    if k not in ("apiVersion", "kind")}}


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    # Strings that would read back as another type (timestamps, numbers, booleans) are
    # double-quoted, as kubectl prints them.
    if dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def parse_time(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's short ages: 45s, 5m10s, 3h20m, 2d5h, 400d."""
    s = int(seconds)
    if s < 0:
        s = 0
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        rem = s % 60
        return f"{m}m{rem}s" if rem else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        rem = m % 60
        return f"{h}h{rem}m" if rem else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        rem = h % 24
        return f"{d}d{rem}h" if rem else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def age(ts: str | None, now: datetime | None = None) -> str:
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    now = now or datetime.now(UTC)
    return human_duration((now - t).total_seconds())
