"""Lengths of what members write that more than one module checks: a leaf module, so that the
edge's schemas check them without importing the rules of rooms (bench/cold_import)."""

from __future__ import annotations

from typing import Final

MAX_TITLE_LENGTH: Final = 100
