"""NGSI v2's Simple Query Language (specification section "Simple Query Language"): ``q`` filters
on attribute values, ``mq`` on metadata values.

A query is statements joined by ``;`` (all must hold). A statement is ``attr`` (it exists),
``!attr`` (it does not), or ``attr OP value`` with OP one of ``==``, ``!=``, ``>``, ``>=``,
``<``, ``<=``, ``~=`` (pattern). With ``==`` and ``!=`` the value may be a list ``a,b,c`` (any
of them) or a range ``a..b`` (inclusive). Values are numbers, ``true``/``false``, ``null``,
ISO 8601 date-times (compared as times against ``DateTime`` attributes; without a zone, UTC),
plain words or ``'quoted strings'``. ``attr.sub`` reaches into a structured value; in ``mq`` the
path is ``attr.metadata[.sub]``. A binary statement on an attribute the entity lacks does not
hold, so ``floodLevelStatus!=Normal`` finds sites with a status other than Normal, not those
without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.api.ngsi.entities import Entity
from gateway.api.ngsi.errors import bad

OPERATORS = ("==", "!=", ">=", "<=", "~=", ">", "<")
NAME = re.compile(r"^[^\s<>\"'=;()!~.]+$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
MAX_STATEMENTS = 50


@dataclass(frozen=True)
class Literal:
    """A value as written: its text, and what else it may mean."""

    text: str
    quoted: bool

    @property
    def number(self) -> float | None:
        return float(self.text) if not self.quoted and NUMBER.match(self.text) else None

    @property
    def moment(self) -> datetime | None:
        if self.quoted or "T" not in self.text and "-" not in self.text[1:]:
            return None
        try:
            moment = datetime.fromisoformat(self.text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    @property
    def constant(self) -> tuple[bool, Any]:
        words = {"true": True, "false": False, "null": None}
        return (not self.quoted and self.text in words), words.get(self.text)


@dataclass(frozen=True)
class Statement:
    path: tuple[str, ...]
    op: str  # "exists", "absent", or one of OPERATORS
    values: tuple[Literal, ...] = ()
    is_range: bool = False


def _split(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside single quotes."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        if text[i] == "'":
            quoted = not quoted
        if not quoted and text.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(text[i])
        i += 1
    if quoted:
        raise bad(f"unterminated quote in {text!r}")
    parts.append("".join(current))
    return parts


def _literal(text: str) -> Literal:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return Literal(text[1:-1], True)
    if not text or "'" in text:
        raise bad(f"empty or badly quoted value {text!r}")
    return Literal(text, False)


def _operator(statement: str) -> tuple[int, str] | None:
    quoted = False
    for i, char in enumerate(statement):
        if char == "'":
            quoted = not quoted
        elif not quoted:
            for op in OPERATORS:
                if statement.startswith(op, i):
                    return i, op
    return None


def parse(text: str, *, metadata: bool) -> list[Statement]:
    """The statements of a ``q`` (``metadata=False``) or ``mq`` expression, or a BadRequest."""
    what = "mq" if metadata else "q"
    statements = []
    parts = _split(text, ";")
    if len(parts) > MAX_STATEMENTS:
        raise bad(f"{what}: more than {MAX_STATEMENTS} statements")
    for part in parts:
        if not part:
            raise bad(f"{what}: empty statement in {text!r}")
        found = _operator(part)
        if found is None:
            negated = part.startswith("!")
            path = _path(part[1:] if negated else part, what, metadata)
            statements.append(Statement(path, "absent" if negated else "exists"))
            continue
        at, op = found
        path = _path(part[:at], what, metadata)
        right = part[at + len(op) :]
        items = _split(right, ",")
        bounds = _split(right, "..") if len(items) == 1 else [right]
        if len(bounds) == 2:
            if op not in ("==", "!="):
                raise bad(f"{what}: a range needs == or != in {part!r}")
            statements.append(Statement(path, op, tuple(map(_literal, bounds)), True))
        elif len(bounds) > 2:
            raise bad(f"{what}: a range has two ends in {part!r}")
        elif len(items) > 1 and op not in ("==", "!="):
            raise bad(f"{what}: a list needs == or != in {part!r}")
        else:
            literals = tuple(map(_literal, items))
            if op == "~=":
                _regex(literals[0].text, what)
            statements.append(Statement(path, op, literals))
    return statements


def _path(text: str, what: str, metadata: bool) -> tuple[str, ...]:
    path = tuple(text.split("."))
    if not all(NAME.match(p) for p in path):
        raise bad(f"{what}: {text!r} is not an attribute name")
    if metadata and len(path) < 2:
        raise bad(f"mq: {text!r} needs attribute.metadata")
    return path


def _regex(text: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise bad(f"{what}: invalid pattern {text!r}: {exc}") from exc


def _resolve(entity: Entity, path: tuple[str, ...], metadata: bool) -> tuple[bool, Any, str]:
    """(found, value, NGSI type) at the path."""
    attribute = entity.get(path[0]) if path[0] not in ("id", "type") else None
    if not isinstance(attribute, dict):
        return False, None, ""
    node, ngsi_type, rest = attribute, attribute.get("type", ""), path[1:]
    if metadata:
        node = attribute["metadata"].get(path[1])
        if node is None:
            return False, None, ""
        ngsi_type, rest = node.get("type", ""), path[2:]
    value = node["value"]
    for key in rest:
        if not isinstance(value, dict) or key not in value:
            return False, None, ""
        value = value[key]
    return True, value, ngsi_type


def _compare(value: Any, ngsi_type: str, literal: Literal) -> int | None:
    """-1, 0 or 1 comparing an attribute's value with a literal; None where they do not compare
    (a number with a word, say)."""
    is_constant, constant = literal.constant
    if is_constant:
        return 0 if value is constant and (constant is not None or value is None) else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = literal.number
        return None if number is None else (value > number) - (value < number)
    if isinstance(value, str):
        moment = literal.moment
        if ngsi_type == "DateTime" and moment is not None:
            mine = Literal(value, False).moment
            if mine is None:
                return None
            return (mine > moment) - (mine < moment)
        return (value > literal.text) - (value < literal.text)
    return None


def _holds(statement: Statement, entity: Entity, metadata: bool) -> bool:
    found, value, ngsi_type = _resolve(entity, statement.path, metadata)
    if statement.op in ("exists", "absent"):
        return found == (statement.op == "exists")
    if not found:
        return False
    if statement.op == "~=":
        return isinstance(value, str) and re.search(statement.values[0].text, value) is not None
    if statement.is_range:
        low = _compare(value, ngsi_type, statement.values[0])
        high = _compare(value, ngsi_type, statement.values[1])
        inside = low is not None and high is not None and low >= 0 and high <= 0
        return inside if statement.op == "==" else not inside
    results = [_compare(value, ngsi_type, literal) for literal in statement.values]
    if statement.op == "==":
        return any(r == 0 for r in results)
    if statement.op == "!=":
        return all(r != 0 for r in results)
    result = results[0]
    if result is None:
        return False
    return {">": result > 0, ">=": result >= 0, "<": result < 0, "<=": result <= 0}[statement.op]


def matches(entity: Entity, statements: list[Statement], *, metadata: bool) -> bool:
    return all(_holds(s, entity, metadata) for s in statements)
