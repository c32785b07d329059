"""Label and field selectors: parsing their string and object forms, and matching objects.

Label selectors follow the Kubernetes grammar (``a=b,c!=d,e in (x,y),f notin (z),g,!h``, plus
``==`` and the ``>``/``<`` integer comparisons), report parse errors as ``BadRequest`` with
Kubernetes' wording, and print in canonical form (requirements sorted by key). Field selectors
support only equality and inequality on the fields each kind exposes; asking for any other field
is a ``BadRequest`` (``field label not supported: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from api.errors import BadRequest

# ---------------------------------------------------------------------------------------------
# Name rules shared with validation (kept here so validation can import them without a cycle).

QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                      "with an alphanumeric character")
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                   "'_' or '.', and must start and end with an alphanumeric character")
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character")

_QUALIFIED_NAME_RE = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{LABEL_VALUE_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Kubernetes' phrasing of a pattern failure, examples first, then the regular expression."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


@lru_cache(maxsize=4096)
def _qualified_name_errors(value: str) -> tuple[str, ...]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return ("a qualified name "
                + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",)
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return tuple(errs)


def qualified_name_errors(value: str) -> list[str]:
    """Why ``value`` is not a label key (``[prefix/]name``); empty when it is one (or not text,
    which schema validation reports)."""
    return list(_qualified_name_errors(value)) if isinstance(value, str) else []


@lru_cache(maxsize=4096)
def _label_value_errors(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return tuple(errs)


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a label value; empty when it is one (or not text)."""
    return list(_label_value_errors(value)) if isinstance(value, str) else []


def go_quote(s: str) -> str:
    """A string as Go's ``%q`` prints it (close enough for ASCII and common escapes)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Label selectors

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str          # one of the constants above
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_EQUALS, NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: the label must hold an integer; the bound was checked at parse time.
        if self.key not in labels:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return have > bound if op == GREATER_THAN else have < bound

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        if op == GREATER_THAN:
            return f"{self.key}>{self.values[0]}"
        if op == LESS_THAN:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


class LabelSelector:
    """A conjunction of requirements. No requirements matches everything; ``nothing()`` nothing."""

    __slots__ = ("requirements", "_nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), *, _nothing: bool = False):
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = _nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(_nothing=True)

    def empty(self) -> bool:
        """True when the selector matches every label set."""
        return not self.requirements and not self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        labels = labels or {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"LabelSelector({str(self)!r})" if not self._nothing else "LabelSelector.nothing()"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LabelSelector) and self.requirements == other.requirements
                and self._nothing == other._nothing)

    def __hash__(self) -> int:
        return hash((self.requirements, self._nothing))


# Tokens of the string form.
_T_ID, _T_END, _T_COMMA, _T_OPEN, _T_CLOSE = "id", "end", ",", "(", ")"
_T_NOT = "!"
_OPERATOR_TOKENS = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GREATER_THAN,
                    "<": LESS_THAN, "in": IN, "notin": NOT_IN}
_SYMBOLS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")
_SPECIAL = set("=!(),><")
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


def _lex(s: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _SPECIAL:
            for sym in _SYMBOLS:
                if s.startswith(sym, i):
                    kind = sym if sym in (_T_COMMA, _T_OPEN, _T_CLOSE, _T_NOT) else "op"
                    tokens.append((kind, sym))
                    i += len(sym)
                    break
            continue
        j = i
        while j < n and not s[j].isspace() and s[j] not in _SPECIAL:
            j += 1
        word = s[i:j]
        tokens.append(("op" if word in ("in", "notin") else _T_ID, word))
        i = j
    tokens.append((_T_END, ""))
    return tokens


class _Parser:
    def __init__(self, s: str):
        self.tokens = _lex(s)
        self.pos = 0

    def peek(self, as_values: bool = True) -> tuple[str, str]:
        kind, lit = self.tokens[self.pos]
        if as_values and kind == "op" and lit in ("in", "notin"):
            kind = _T_ID  # keywords are ordinary words where a key or value is expected
        return kind, lit

    def take(self, as_values: bool = True) -> tuple[str, str]:
        tok = self.peek(as_values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except ValueError as e:
                    raise ValueError(f"unable to parse requirement: {e}") from None
                kind, lit = self.take()
                if kind == _T_END:
                    return reqs
                if kind == _T_COMMA:
                    k2, l2 = self.peek()
                    if k2 not in (_T_ID, _T_NOT):
                        raise ValueError(f"found '{l2}', expected: identifier after ','")
                    continue
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            if kind == _T_END:
                return reqs
            raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        kind, lit = self.take()
        negated = kind == _T_NOT
        if negated:
            kind, lit = self.take()
        if kind != _T_ID:
            raise ValueError(f"found '{lit}', expected: identifier")
        key = lit
        _check_key(key, "<nil>")
        nxt, _ = self.peek()
        if nxt in (_T_END, _T_COMMA):
            return _new_requirement(key, DOES_NOT_EXIST if negated else EXISTS, ())
        if negated:  # "!a=b": the caller reports the unexpected operator
            return _new_requirement(key, DOES_NOT_EXIST, ())
        okind, olit = self.take(as_values=False)
        if okind != "op":
            raise ValueError(f"found '{olit}', expected: {_BINARY_OPERATORS}")
        op = _OPERATOR_TOKENS[olit]
        if op in (IN, NOT_IN):
            values = self.value_set()
        else:
            values = self.exact_value()
        return _new_requirement(key, op, values)

    def value_set(self) -> tuple[str, ...]:
        kind, lit = self.take()
        if kind != _T_OPEN:
            raise ValueError(f"found '{lit}' expected: '('")
        kind, lit = self.peek()
        if kind == _T_CLOSE:
            self.take()
            return ("",)
        if kind not in (_T_ID, _T_COMMA):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, lit = self.take()
            if kind == _T_ID:
                values.add(lit)
                k2, l2 = self.peek()
                if k2 == _T_COMMA:
                    self.take()
                    k3, _ = self.peek()
                    if k3 == _T_CLOSE:   # "(a,)" carries an empty value
                        values.add("")
                    continue
                if k2 == _T_CLOSE:
                    self.take()
                    return tuple(sorted(values))
                raise ValueError(f"found '{l2}', expected: ',' or ')'")
            if kind == _T_COMMA:         # "(,a)" and "(a,,b)" carry an empty value
                values.add("")
                k2, _ = self.peek()
                if k2 == _T_CLOSE:
                    self.take()
                    return tuple(sorted(values))
                continue
            if kind == _T_CLOSE:
                return tuple(sorted(values))
            raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> tuple[str, ...]:
        kind, _ = self.peek()
        if kind in (_T_END, _T_COMMA):
            return ("",)
        kind, lit = self.take()
        if kind == _T_ID:
            return (lit,)
        raise ValueError(f"found '{lit}', expected: identifier")


def _check_key(key: str, path: str) -> None:
    errs = _qualified_name_errors(key)
    if errs:
        raise ValueError(f"{path}: Invalid value: {go_quote(key)}: {'; '.join(errs)}")


def _new_requirement(key: str, op: str, values: Iterable[str], path: str = "") -> Requirement:
    vals = tuple(values)
    problems: list[str] = []
    key_path = f"{path}.key" if path else "key"
    values_path = f"{path}.values" if path else "values"
    errs = _qualified_name_errors(key)
    if errs:
        problems.append(f"{key_path}: Invalid value: {go_quote(key)}: {'; '.join(errs)}")

    def shown() -> str:
        return "[]string{" + ", ".join(go_quote(v) for v in vals) + "}"

    if op in (IN, NOT_IN) and not vals:
        problems.append(f"{values_path}: Invalid value: {shown()}: for 'in', 'notin' operators, "
                        "values set can't be empty")
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(vals) != 1:
        problems.append(f"{values_path}: Invalid value: {shown()}: exact-match compatibility requires "
                        "one single value")
    elif op in (EXISTS, DOES_NOT_EXIST) and vals:
        problems.append(f"{values_path}: Invalid value: {shown()}: values set must be empty for exists "
                        "and does not exist")
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            problems.append(f"{values_path}: Invalid value: {shown()}: for 'Gt', 'Lt' operators, exactly "
                            "one value is required")
        for i, v in enumerate(vals):
            if not re.fullmatch(r"[+-]?[0-9]+", v):
                problems.append(f"{values_path}[{i}]: Invalid value: {go_quote(v)}: for 'Gt', 'Lt' "
                                "operators, the value must be an integer")
    for i, v in enumerate(vals):
        verrs = _label_value_errors(v)
        if verrs:
            problems.append(f"{values_path}[{i}][{key}]: Invalid value: {go_quote(v)}: "
                            f"{'; '.join(verrs)}")
    if problems:
        raise ValueError(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")
    return Requirement(key, op, vals)


@lru_cache(maxsize=2048)
def _parse_label_selector(s: str) -> LabelSelector:
    return LabelSelector(_Parser(s).parse())


def parse_label_selector(s: str | None) -> LabelSelector:
    """Parse the string form (``?labelSelector=``). Raises ``BadRequest`` on bad syntax."""
    if not s or not s.strip():
        return LabelSelector()
    try:
        return _parse_label_selector(s)
    except ValueError as e:
        raise BadRequest(str(e)) from None


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A selector from a ``metav1.LabelSelector`` dict.

    As in Kubernetes, ``None`` selects nothing while ``{}`` selects everything. Raises
    ``BadRequest`` for an unknown operator or invalid keys and values.
    """
    if sel is None:
        return LabelSelector.nothing()
    reqs: list[Requirement] = []
    try:
        for k, v in sorted((sel.get("matchLabels") or {}).items()):
            reqs.append(_new_requirement(k, EQUALS, (v,)))
        for expr in sel.get("matchExpressions") or ():
            op = _EXPRESSION_OPERATORS.get(expr.get("operator", ""))
            if op is None:
                raise ValueError(f"{go_quote(str(expr.get('operator', '')))} is not a valid label "
                                 "selector operator")
            values = tuple(sorted(set(expr.get("values") or ())))
            reqs.append(_new_requirement(expr.get("key", ""), op, values))
    except ValueError as e:
        raise BadRequest(str(e)) from None
    except (AttributeError, TypeError):
        raise BadRequest(f"invalid label selector: {sel!r}") from None
    return LabelSelector(reqs)


def from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """Equality on every pair (a Service's or ReplicationController's map selector).

    Unlike ``from_label_selector``, keys and values are not re-validated: the caller's object
    passed validation already.
    """
    return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


def selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """The canonical string form of a ``metav1.LabelSelector`` dict (for ``status.selector``)."""
    return str(from_label_selector(sel))


# ---------------------------------------------------------------------------------------------
# Field selectors


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str          # "=", "==" or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_field_value(self.value)}"


def _escape_field_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _field(path: tuple[str, ...], fmt: Callable[[Any], str] | None = None) -> Callable[[dict], str]:
    def get(obj: dict) -> str:
        cur: Any = obj
        for p in path:
            if not isinstance(cur, dict):
                cur = None
                break
            cur = cur.get(p)
        if fmt is not None:
            return fmt(cur)
        return "" if cur is None else str(cur)
    return get


def _bool(v: Any) -> str:
    return "true" if v else "false"


def _int(v: Any) -> str:
    return str(int(v or 0))


def _event_source(ev: dict) -> str:
    return ((ev.get("source") or {}).get("component") or ev.get("reportingController")
            or ev.get("reportingComponent") or "")


_COMMON_FIELDS: dict[str, Callable[[dict], str]] = {
    "metadata.name": _field(("metadata", "name")),
    "metadata.namespace": _field(("metadata", "namespace")),
}

# Per-kind selectable fields (besides metadata.name and metadata.namespace), as Kubernetes 1.32.
FIELDS_BY_KIND: dict[str, dict[str, Callable[[dict], str]]] = {
    "Pod": {
        "spec.nodeName": _field(("spec", "nodeName")),
        "spec.restartPolicy": _field(("spec", "restartPolicy")),
        "spec.schedulerName": _field(("spec", "schedulerName")),
        "spec.serviceAccountName": _field(("spec", "serviceAccountName")),
        "spec.hostNetwork": _field(("spec", "hostNetwork"), _bool),
        "status.phase": _field(("status", "phase")),
        "status.podIP": _field(("status", "podIP")),
        "status.nominatedNodeName": _field(("status", "nominatedNodeName")),
    },
    "Node": {"spec.unschedulable": _field(("spec", "unschedulable"), _bool)},
    "Event": {
        "involvedObject.kind": _field(("involvedObject", "kind")),
        "involvedObject.namespace": _field(("involvedObject", "namespace")),
        "involvedObject.name": _field(("involvedObject", "name")),
        "involvedObject.uid": _field(("involvedObject", "uid")),
        "involvedObject.apiVersion": _field(("involvedObject", "apiVersion")),
        "involvedObject.resourceVersion": _field(("involvedObject", "resourceVersion")),
        "involvedObject.fieldPath": _field(("involvedObject", "fieldPath")),
        "reason": _field(("reason",)),
        "reportingComponent": _field(("reportingComponent",)),
        "source": _event_source,
        "type": _field(("type",)),
    },
    "Secret": {"type": _field(("type",))},
    "Namespace": {"status.phase": _field(("status", "phase"))},
    "Service": {"spec.clusterIP": _field(("spec", "clusterIP")), "spec.type": _field(("spec", "type"))},
    "ReplicaSet": {"status.replicas": _field(("status", "replicas"), _int)},
    "ReplicationController": {"status.replicas": _field(("status", "replicas"), _int)},
    "Job": {"status.successful": _field(("status", "successful"), _int)},
}
# Event's reportingComponent is stored as reportingController in core/v1 Events.
FIELDS_BY_KIND["Event"]["reportingComponent"] = (
    lambda ev: ev.get("reportingController") or ev.get("reportingComponent") or "")


def supported_fields(kind: str) -> set[str]:
    return set(_COMMON_FIELDS) | set(FIELDS_BY_KIND.get(kind, {}))


def unsupported_field(kind: str, field: str) -> BadRequest:
    """Kubernetes' refusal of a field selector: kinds with their own selectable fields say
    ``field label not supported``; the others list the two metadata fields every kind has."""
    if kind in FIELDS_BY_KIND:
        return BadRequest(f"field label not supported: {field}")
    return BadRequest(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')


def field_getter(kind: str, field: str) -> Callable[[dict], str] | None:
    """The function giving ``field``'s selectable string value on objects of ``kind``, or None."""
    return _COMMON_FIELDS.get(field) or FIELDS_BY_KIND.get(kind, {}).get(field)


_getter = field_getter  # kept for callers written before field_getter was public


class FieldSelector:
    """A conjunction of field equalities/inequalities; no requirements matches everything."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()):
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)

    def empty(self) -> bool:
        return not self.requirements

    def check(self, kind: str) -> None:
        """Raise ``BadRequest`` if a field is not selectable on ``kind``."""
        for r in self.requirements:
            if _getter(kind, r.field) is None:
                raise unsupported_field(kind, r.field)

    def matches(self, obj: dict, kind: str | None = None) -> bool:
        """Whether ``obj`` satisfies every requirement. ``kind`` defaults to ``obj['kind']``.

        Raises ``BadRequest`` for a field the kind does not expose.
        """
        kind = kind or obj.get("kind", "")
        for r in self.requirements:
            get = _getter(kind, r.field)
            if get is None:
                raise unsupported_field(kind, r.field)
            equal = get(obj) == r.value
            if equal != (r.operator != "!="):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


def _split_unescaped(s: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\,=":
                raise ValueError(f"invalid escape sequence in {s!r}")
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _find_operator(term: str) -> tuple[int, str] | None:
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        if term.startswith("!=", i):
            return i, "!="
        if term.startswith("==", i):
            return i, "=="
        if ch == "=":
            return i, "="
        i += 1
    return None


@lru_cache(maxsize=1024)
def _parse_field_selector(s: str) -> FieldSelector:
    reqs = []
    for term in _split_unescaped(s, ","):
        if not term:
            continue
        found = _find_operator(term)
        if found is None:
            raise ValueError(f"invalid selector: '{s}'; can't understand '{term}'")
        at, op = found
        field, raw = term[:at].strip(), term[at + len(op):]
        try:
            value = _unescape(raw)
        except ValueError:
            raise ValueError(f"invalid selector: '{s}'; can't understand '{term}'") from None
        reqs.append(FieldRequirement(field, op, value))
    return FieldSelector(reqs)


def parse_field_selector(s: str | None, kind: str | None = None) -> FieldSelector:
    """Parse ``?fieldSelector=``; with ``kind``, also refuse fields that kind does not expose.

    Raises ``BadRequest`` on bad syntax or an unsupported field.
    """
    if not s or not s.strip():
        return FieldSelector()
    try:
        sel = _parse_field_selector(s)
    except ValueError as e:
        raise BadRequest(str(e)) from None
    if kind is not None:
        sel.check(kind)
    return sel


def requires_exact_name(selector: FieldSelector | str | None) -> str | None:
    """The name when the selector pins ``metadata.name=X`` (so a list can become a get)."""
    if isinstance(selector, str) or selector is None:
        selector = parse_field_selector(selector)
    for r in selector.requirements:
        if r.field == "metadata.name" and r.operator in ("=", "=="):
            return r.value
    return None
