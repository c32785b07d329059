"""Reading ``-f`` inputs as kubectl does: files, directories (``-R`` to recurse), ``-`` for stdin,
multi-document YAML or JSON, and ``List`` kinds expanded into their items.

Reading happens in a thread (``load``); each object comes with the source it was read from, for
error messages such as ``error when creating "app.yaml": ...``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from cli.context import CLIError

EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass
class Manifest:
    obj: dict[str, Any]
    source: str


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        found: list[Path] = []
        if recursive:
            for root, dirs, files in os.walk(p):
                dirs.sort()
                found += [Path(root) / f for f in sorted(files) if f.endswith(EXTENSIONS)]
        else:
            found = [c for c in sorted(p.iterdir()) if c.is_file() and c.name.endswith(EXTENSIONS)]
        return found
    if not p.exists():
        raise CLIError(f'the path "{path}" does not exist')
    return [p]


def _expand(doc: Any, source: str, out: list[Manifest]) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise CLIError(f'error validating "{source}": error validating data: invalid object: not a mapping')
    kind = doc.get("kind") or ""
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        for item in doc.get("items") or []:
            _expand(item, source, out)
        return
    if not kind or not doc.get("apiVersion"):
        missing = "kind" if not kind else "apiVersion"
        raise CLIError(f'error validating "{source}": error validating data: {missing} not set')
    out.append(Manifest(doc, source))


def parse_text(text: str, source: str) -> list[Manifest]:
    out: list[Manifest] = []
    try:
        for doc in yaml.safe_load_all(text):
            _expand(doc, source, out)
    except yaml.YAMLError as e:
        raise CLIError(f'error parsing {source}: {e}') from None
    return out


def _load(paths: list[str], recursive: bool, stdin: TextIO) -> list[Manifest]:
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            out += parse_text(stdin.read(), "STDIN")
            continue
        for f in _files(path, recursive):
            out += parse_text(f.read_text(), str(f))
    if not out:
        raise CLIError("no objects passed to apply" if paths else "must specify one of -f and -k")
    return out


async def load(paths: list[str], recursive: bool, stdin: TextIO) -> list[Manifest]:
    return await asyncio.to_thread(_load, paths, recursive, stdin)
