"""The environment the in-process benches run the production code in: emulated AWS (moto),
fixed bench credentials, quiet Powertools. A bench sets it before importing boto3, moto or
chalicelib (settings are read when those are first imported), as
`os.environ.update(bench_env(...))`, and drops any real endpoint or profile with
`os.environ.pop("AWS_ENDPOINT_URL", None)` and `os.environ.pop("AWS_PROFILE", None)`: ruff lets
environment changes, and only those, come before the imports they are for."""

from __future__ import annotations

BENCH_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "SALON_STAGE": "bench",
    "SALON_JWT_SECRET": "bench-only-secret-bench-only-secret",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
QUEUES = "https://sqs.us-east-1.amazonaws.com/123456789012"


def bench_env(**extra: str) -> dict[str, str]:
    """The bench environment plus `extra` (a bench's own queues and limits)."""
    return {**BENCH_ENV, **extra}
