"""Test-wide settings: offline AWS credentials, a test stage, and quiet Powertools."""

import os

# Set before anything imports chalicelib: settings and table names are read once per process.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "SALON_STAGE": "test",
        "SALON_JWT_SECRET": "test-only-signing-secret-of-sufficient-length",
        "SALON_WS_MANAGEMENT_URL": "http://127.0.0.1:9/test",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "SalonTest",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_IDEMPOTENCY_DISABLED": "1",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from local import moto_atomic

moto_atomic.install()
