"""One botocore data loader for the whole test process.

botocore caches the service models it reads on its loader, and each `Session` makes its own:
moto resets boto3's default session on every `mock_aws()`, so every test read the same JSON
models from disk again (~0.18 s a client). The loaders are shared per data path; what they load
is unchanged."""

from __future__ import annotations

import functools

import botocore.session
from botocore.loaders import Loader, create_loader


@functools.cache
def _loader(search_path: str | None) -> Loader:
    return create_loader(search_path)


def install() -> None:
    botocore.session.create_loader = _loader  # type: ignore[attr-defined]
