"""Hypothesis strategies from the JSON Schemas of docs/asyncapi.yaml, plus hostile mutations.

Enough of JSON Schema for the client messages Salon documents: `$ref`, `const`, `enum`,
`oneOf`/`anyOf`, strings (length, pattern), numbers, booleans, arrays and objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from tests.support import contract

TEXT_LIMIT = 80


def from_schema(document: Mapping[str, Any], schema: Any) -> st.SearchStrategy[Any]:
    schema = contract.resolve(document, schema)
    if not isinstance(schema, dict):
        return st.none()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(document, s) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema(document, {**schema, "type": k}) for k in kind])
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(document, schema.get("items", {})), max_size=3)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        fields = {k: from_schema(document, v) for k, v in properties.items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low = int(schema.get("minLength", 0))
    high = min(int(schema.get("maxLength", TEXT_LIMIT)), TEXT_LIMIT)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= max(high, low)
        )
    return st.text(min_size=low, max_size=max(high, low))


WRONG_VALUES = (None, 0, -1, 1.5, True, [], {}, "", " ", "x" * 5000, "\ud800", [[[]]])


@st.composite
def hostile(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> str | bytes:
    """A frame made from a valid message the way a broken or hostile client would."""
    message = dict(draw(valid))
    keys = sorted(message)
    kind = draw(
        st.sampled_from(
            (
                "drop",
                "wrong",
                "extra",
                "surrogate",
                "deep",
                "nan",
                "ref",
                "not_object",
                "not_json",
                "binary",
            )
        )
    )
    if kind == "drop" and keys:
        message.pop(draw(st.sampled_from(keys)))
    elif kind == "wrong" and keys:
        message[draw(st.sampled_from(keys))] = draw(st.sampled_from(WRONG_VALUES))
    elif kind == "extra":
        message[draw(st.text(min_size=1, max_size=10))] = draw(st.sampled_from(WRONG_VALUES))
    elif kind == "surrogate" and keys:
        message[draw(st.sampled_from(keys))] = "cut \ud83d"
    elif kind == "deep":
        levels = draw(st.integers(30, 3000))
        return json.dumps(message)[:-1] + ', "x": ' + "[" * levels + "]" * levels + "}"
    elif kind == "nan":
        field = draw(st.sampled_from(keys)) if keys else "x"
        literal = draw(st.sampled_from(("NaN", "Infinity", "-Infinity")))
        rest = {k: v for k, v in message.items() if k != field}
        inner = draw(st.booleans())
        value = '{"sdp": ' + literal + "}" if inner else literal
        return json.dumps(rest)[:-1] + f', "{field}": {value}' + "}"
    elif kind == "ref":
        message["ref"] = draw(st.sampled_from(("r" * 65, 7, None, [], "\u00e9" * 64)))
    elif kind == "not_object":
        return draw(st.sampled_from(("[]", "1", '"ping"', "null", "true", "[{}]")))
    elif kind == "not_json":
        return draw(st.sampled_from(("", "{", "action=ping", '{"action": "ping",}', "\x00")))
    elif kind == "binary":
        return json.dumps(message).encode()
    return json.dumps(message)
