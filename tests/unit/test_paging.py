"""The listings' cursors (chalicelib/adapters/dynamo/paging.py): what one page hands out, the
next reads back; anything else is the client's mistake, never a server error."""

from __future__ import annotations

import pytest

from chalicelib.adapters.dynamo.paging import decode_cursor, encode_cursor
from chalicelib.domain.errors import ValidationError
from tests.support.cursors import FORGED_CURSORS


def test_a_cursor_reads_back_the_key_it_was_made_from() -> None:
    key = {"user_id": {"S": "u1"}, "at": {"N": "17"}}
    assert decode_cursor(encode_cursor(key)) == key
    assert encode_cursor(None) is None and decode_cursor(None) is None


@pytest.mark.parametrize("cursor", FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
def test_a_forged_cursor_is_a_validation_error_on_the_cursor(cursor: str) -> None:
    with pytest.raises(ValidationError) as raised:
        decode_cursor(cursor)
    assert raised.value.details == {"field": "cursor"}
