"""kubectl's JSONPath templates: ``{.items[*].metadata.name}``, ``{range ...}{end}``, literals.

Supported: ``.field``, ``['field']``, ``[n]`` (negative too), ``[a:b]``, ``[*]`` / ``.*``,
``[a,b]`` unions, ``..field`` recursive descent, filters ``[?(@.x == "y")]`` (==, !=, <, <=, >,
>=, or bare existence), ``{range EXPR}...{end}`` and quoted literals such as ``{"\\n"}``. Several
results of one expression print space-separated; maps and lists print as JSON; a missing field
prints nothing (kubectl's ``--allow-missing-template-keys=true``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class JSONPathError(ValueError):
    pass


# -------------------------------------------------------------------------- template nodes

@dataclass
class _Text:
    text: str


@dataclass
class _Expr:
    steps: list[tuple[str, Any]]


@dataclass
class _Range:
    steps: list[tuple[str, Any]]
    body: list[Any] = field(default_factory=list)


def _unquote(lit: str) -> str:
    if lit[0] == "'":
        lit = '"' + lit[1:-1].replace('"', '\\"') + '"'
    try:
        return json.loads(lit)
    except json.JSONDecodeError as e:
        raise JSONPathError(f"bad literal {lit}: {e}") from None


def parse(template: str) -> list[Any]:
    if "{" not in template:
        template = "{" + template + "}"
    root: list[Any] = []
    stack: list[list[Any]] = [root]
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            stack[-1].append(_Text(template[i:]))
            break
        if j > i:
            stack[-1].append(_Text(template[i:j]))
        k = _close(template, j)
        inner = template[j + 1:k].strip()
        i = k + 1
        if inner.startswith("range "):
            node = _Range(_parse_path(inner[6:].strip()))
            stack[-1].append(node)
            stack.append(node.body)
        elif inner == "end":
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            stack.pop()
        elif inner[:1] in ("'", '"'):
            stack[-1].append(_Text(_unquote(inner)))
        elif inner:
            stack[-1].append(_Expr(_parse_path(inner)))
    if len(stack) != 1:
        raise JSONPathError("unclosed range")
    return root


def _close(s: str, start: int) -> int:
    quote = None
    depth = 0
    i = start
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in ("'", '"'):
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise JSONPathError(f"unclosed action in {s!r}")


def _parse_path(text: str) -> list[tuple[str, Any]]:
    """Steps: ("field", name), ("index", n), ("slice", (a, b, c)), ("all", None),
    ("union", [names or ints]), ("recurse", None), ("filter", (lhs, op, rhs))."""
    steps: list[tuple[str, Any]] = []
    i = 0
    if text[:1] in ("$", "@"):
        i = 1
    n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("..", i):
            steps.append(("recurse", None))
            i += 2
            if i < n and text[i] not in ".[":
                m = re.match(r"[^.\[\s]+", text[i:])
                assert m
                steps.append(("field", m.group(0)))
                i += len(m.group(0))
        elif c == ".":
            i += 1
            m = re.match(r"[^.\[\s]*", text[i:])
            assert m
            name = m.group(0)
            i += len(name)
            if name == "*":
                steps.append(("all", None))
            elif name:
                steps.append(("field", name))
        elif c == "[":
            k = _bracket_end(text, i)
            steps.append(_parse_bracket(text[i + 1:k].strip()))
            i = k + 1
        elif c.isspace():
            i += 1
        else:
            m = re.match(r"[^.\[\s]+", text[i:])
            assert m
            steps.append(("field", m.group(0)))
            i += len(m.group(0))
    return steps


def _bracket_end(s: str, start: int) -> int:
    quote = None
    depth = 0
    for i in range(start, len(s)):
        c = s[i]
        if quote:
            if c == quote:
                quote = None
        elif c in ("'", '"'):
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError(f"unterminated [ in {s!r}")


_OPS = ("==", "!=", "<=", ">=", "<", ">")


def _parse_bracket(inner: str) -> tuple[str, Any]:
    if inner == "*":
        return ("all", None)
    if inner.startswith("?"):
        expr = inner[1:].strip()
        if expr.startswith("(") and expr.endswith(")"):
            expr = expr[1:-1].strip()
        for op in _OPS:
            pos = _find_op(expr, op)
            if pos >= 0:
                return ("filter", (_operand(expr[:pos].strip()), op, _operand(expr[pos + len(op):].strip())))
        return ("filter", (_operand(expr), None, None))
    if ":" in inner and inner[:1] not in ("'", '"'):
        parts = [p.strip() for p in inner.split(":")]
        nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
        return ("slice", tuple(nums[:3]))
    parts = [p.strip() for p in inner.split(",")]
    keys: list[Any] = []
    for p in parts:
        if p[:1] in ("'", '"'):
            keys.append(_unquote(p))
        else:
            try:
                keys.append(int(p))
            except ValueError:
                keys.append(p)
    if len(keys) == 1:
        k = keys[0]
        return ("index", k) if isinstance(k, int) else ("field", k)
    return ("union", keys)


def _find_op(expr: str, op: str) -> int:
    quote = None
    for i in range(len(expr)):
        c = expr[i]
        if quote:
            if c == quote:
                quote = None
        elif c in ("'", '"'):
            quote = c
        elif expr.startswith(op, i):
            if op in ("<", ">") and expr[i + 1:i + 2] == "=":
                continue
            return i
    return -1


def _operand(text: str) -> tuple[str, Any]:
    if text[:1] in ("@", "$"):
        return ("path", _parse_path(text))
    if text[:1] in ("'", '"'):
        return ("value", _unquote(text))
    if text in ("true", "false"):
        return ("value", text == "true")
    try:
        return ("value", int(text))
    except ValueError:
        pass
    try:
        return ("value", float(text))
    except ValueError:
        return ("value", text)


# -------------------------------------------------------------------------- evaluation

def _step(values: list[Any], step: tuple[str, Any]) -> list[Any]:
    kind, arg = step
    out: list[Any] = []
    for v in values:
        if kind == "field":
            if isinstance(v, dict) and arg in v:
                out.append(v[arg])
        elif kind == "index":
            if isinstance(v, list) and -len(v) <= arg < len(v):
                out.append(v[arg])
        elif kind == "slice":
            if isinstance(v, list):
                a, b, c = arg
                out.extend(v[slice(a, b, c)])
        elif kind == "all":
            if isinstance(v, list):
                out.extend(v)
            elif isinstance(v, dict):
                out.extend(v[k] for k in sorted(v))
        elif kind == "union":
            for k in arg:
                out.extend(_step([v], ("index", k) if isinstance(k, int) else ("field", k)))
        elif kind == "recurse":
            _descend(v, out)
        elif kind == "filter":
            items = v if isinstance(v, list) else []
            out.extend(x for x in items if _test(x, arg))
    return out


def _descend(v: Any, out: list[Any]) -> None:
    out.append(v)
    if isinstance(v, dict):
        for k in v:
            _descend(v[k], out)
    elif isinstance(v, list):
        for x in v:
            _descend(x, out)


def _values(operand: tuple[str, Any], current: Any) -> list[Any]:
    kind, arg = operand
    if kind == "value":
        return [arg]
    return evaluate_steps(arg, current)


def _test(item: Any, flt: tuple[Any, str | None, Any]) -> bool:
    lhs, op, rhs = flt
    left = _values(lhs, item)
    if op is None:
        return bool(left) and left[0] not in (None, False)
    right = _values(rhs, item)
    if not left or not right:
        return False
    a, b = left[0], right[0]
    try:
        if op == "==":
            return a == b or str(a) == str(b) and not isinstance(b, bool)
        if op == "!=":
            return a != b
        if isinstance(a, str) != isinstance(b, str):
            a, b = float(a), float(b)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except (TypeError, ValueError):
        return False


def evaluate_steps(steps: list[tuple[str, Any]], data: Any) -> list[Any]:
    values = [data]
    for step in steps:
        values = _step(values, step)
    return values


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _render(nodes: list[Any], data: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Expr):
            out.append(" ".join(_text(v) for v in evaluate_steps(node.steps, data)))
        elif isinstance(node, _Range):
            for item in evaluate_steps(node.steps, data):
                _render(node.body, item, out)


def render(template: str, data: Any) -> str:
    out: list[str] = []
    _render(parse(template), data, out)
    return "".join(out)
