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
        "SALON_PHOTOS_BUCKET": "salon-test-photos",
        "SALON_PHOTOS_URL": "https://salon-test-photos.s3.us-east-1.amazonaws.com",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from local import moto_atomic, service_limits
from tests.support import shared_loader

moto_atomic.install()
service_limits.install()  # AWS's request size limits, which moto does not all check
shared_loader.install()  # the service models read once per process, not once per test


# --- the packaged template and the IAM replay (issue 11) ------------------------------------

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from deploy.wiring import Function, Template, packaged_template  # noqa: E402
from tests.support.iam_replay import Replay  # noqa: E402

LOCAL_API_ID = "local"  # the local gateway's API id, standing for the template's WebsocketAPI
REPLAY_REPORT = Path(__file__).resolve().parents[1] / "build" / "iam-replay.json"
_replays: list[Replay] = []


@pytest.fixture(scope="session")
def packaged() -> Template:
    """The dev stage's packaged template, packaged at most once per change to its inputs."""
    return Template.load(packaged_template("dev"), {"WebsocketAPI": LOCAL_API_ID})


@pytest.fixture(scope="session")
def packaged_prod() -> Template:
    """The prod stage's packaged template (its media plane is IVS)."""
    return Template.load(packaged_template("prod"), {"WebsocketAPI": LOCAL_API_ID})


def _stage_names(arn: str, function: Function) -> str:
    """The integration tests' tables carry this process's prefix and their photos bucket its
    own name; the deployment's, the stage's. Nothing else is renamed."""
    from chalicelib.config import settings

    run_prefix, bucket = settings().table_prefix, settings().photos_bucket
    return arn.replace(
        f":table/{run_prefix}", f":table/{function.environment['SALON_TABLE_PREFIX']}"
    ).replace(f":::{bucket}", f":::{function.environment['SALON_PHOTOS_BUCKET']}")


@pytest.fixture(scope="session")
def iam_replay(packaged: Template) -> Replay:
    replay = Replay(packaged, _stage_names)
    _replays.append(replay)
    return replay


def assert_allowed(replay: Replay, records: list[dict[str, Any]]) -> None:
    denied = replay.check(records)
    if denied:
        pytest.fail("AWS calls the packaged template's IAM policies deny:\n" + "\n".join(denied))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for replay in _replays:
        replay.write_report(REPLAY_REPORT)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for replay in _replays:
        unused = replay.unused()
        terminalreporter.write_line(
            f"IAM replay: {replay.checked} calls checked against their function's policy, "
            f"{replay.untagged} made outside any function; statements no call needed: "
            f"{sum(len(v) for v in unused.values())}; functions no call came from: "
            f"{', '.join(replay.never_run()) or 'none'} (see {REPLAY_REPORT})"
        )
