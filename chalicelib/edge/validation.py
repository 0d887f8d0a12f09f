"""Checks every incoming payload against a declared shape before it reaches a use case."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import ValidationError

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


def _refuse_non_finite(constant: str) -> Any:
    # Python reads NaN and Infinity, but they are not JSON: browsers' JSON.parse rejects them,
    # so relaying one would break the receiving client.
    raise ValidationError(f"Numbers must be finite: {constant} is not JSON.")


def parse_json_object(raw: bytes | str | None, *, what: str = "body") -> dict[str, Any]:
    """Parse a JSON object; anything else is a clear validation error."""
    if raw is None or raw in (b"", ""):
        raise ValidationError(f"The {what} must be a JSON object.")
    try:
        value = json.loads(raw, parse_constant=_refuse_non_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The {what} is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ValidationError(f"The {what} must be a JSON object.")
    return value
