"""Checks every incoming payload against a declared shape before it reaches a use case."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import ValidationError

# Deeper than any body or message Salon declares (a signal payload is 3 levels): a limit checked
# before parsing, so that a hostile body can never reach the parser's recursion limit.
MAX_JSON_DEPTH = 32
# UTF-16 surrogates are halves of a character, never characters: JSON's "\ud800" decodes to one,
# and a string holding one cannot be written as UTF-8 (to DynamoDB, a token, a log, a peer).
_SURROGATE = re.compile("[\ud800-\udfff]")
# A string (to skip: brackets in it do not nest; an unclosed one runs to the end) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: type = str
    required: bool = True
    max_length: int | None = None
    min_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] | None = None

    def check(self, value: Any) -> Any:
        # bool is a subclass of int in Python: refuse it where a number is wanted.
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise _invalid(self.name, f"must be {_TYPE_NAMES.get(self.type, self.type.__name__)}")
        if isinstance(value, str):
            check_text(value, self.name)
            value = value.strip()
            if len(value) < self.min_length:
                raise _invalid(
                    self.name,
                    "must not be empty"
                    if self.min_length == 1
                    else f"must have at least {self.min_length} characters",
                )
            if self.max_length is not None and len(value) > self.max_length:
                raise _invalid(self.name, f"must have at most {self.max_length} characters")
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                raise _invalid(self.name, "has characters or a form that is not allowed")
            if self.choices is not None and value not in self.choices:
                raise _invalid(self.name, f"must be one of: {', '.join(self.choices)}")
        if isinstance(value, int) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise _invalid(self.name, f"must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise _invalid(self.name, f"must be at most {self.maximum}")
        if isinstance(value, (dict, list)) and self.max_length is not None:
            if len(json.dumps(value)) > self.max_length:
                raise _invalid(self.name, f"must be at most {self.max_length} bytes as JSON")
        return value


def _invalid(field: str, problem: str) -> ValidationError:
    return ValidationError(f"'{field}' {problem}.", field=field)


def validate(
    payload: Mapping[str, Any], fields: Sequence[Field], *, ignore: Sequence[str] = ()
) -> dict[str, Any]:
    """Return the declared fields, checked and trimmed; refuse missing and unknown ones."""
    for key in payload:
        check_text(key, "")
    known = {f.name for f in fields}
    unknown = sorted(set(payload) - known - set(ignore))
    if unknown:
        raise ValidationError(f"Unknown field '{unknown[0]}'.", field=unknown[0])
    clean: dict[str, Any] = {}
    for f in fields:
        if payload.get(f.name) is None:
            if f.required:
                raise _invalid(f.name, "is required")
            continue
        clean[f.name] = f.check(payload[f.name])
    return clean


class TooDeepError(ValidationError):
    """Objects and lists nested deeper than any request Salon declares."""


class InvalidTextError(ValidationError):
    """A string that is not text: it holds half of a UTF-16 surrogate pair."""


def is_text(value: str) -> bool:
    return _SURROGATE.search(value) is None


def check_text(value: str, field: str) -> str:
    """`value`, if it is whole Unicode text; a lone surrogate is refused, naming the field."""
    if not is_text(value):
        where = f"'{field}'" if field else "A field name"
        raise InvalidTextError(
            f"{where} contains a lone UTF-16 surrogate (half of a character, as when a string is "
            "cut inside an emoji); send whole characters.",
            **({"field": field} if field else {}),
        )
    return value


def _refuse_non_finite(constant: str) -> Any:
    # Python reads NaN and Infinity, but they are not JSON: browsers' JSON.parse rejects them,
    # so relaying one would break the receiving client.
    raise ValidationError(f"Numbers must be finite: {constant} is not JSON.")


def parse_json_object(raw: bytes | str | None, *, what: str = "body") -> dict[str, Any]:
    """Parse a JSON object of whole text, nested at most MAX_JSON_DEPTH levels; anything else
    is a clear validation error."""
    if raw is None or raw in (b"", ""):
        raise ValidationError(f"The {what} must be a JSON object.")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        _check_depth(text, what)
        value = json.loads(text, parse_constant=_refuse_non_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The {what} is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ValidationError(f"The {what} must be a JSON object.")
    _check_all_text(value)
    return value


def _check_depth(text: str, what: str) -> None:
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        mark = match.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise TooDeepError(
                    f"The {what} nests objects or lists more than {MAX_JSON_DEPTH} levels deep."
                )
        elif mark in "]}":
            depth -= 1


def _check_all_text(document: dict[str, Any]) -> None:
    """Every key and string of a parsed document, at any depth, named by its top-level field."""
    pending: list[tuple[str, Any]] = []
    for key, value in document.items():
        check_text(key, "")
        pending.append((key, value))
    while pending:
        field, value = pending.pop()
        if isinstance(value, str):
            check_text(value, field)
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key, field)
                pending.append((field, item))
        elif isinstance(value, list):
            pending.extend((field, item) for item in value)
