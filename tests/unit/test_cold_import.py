"""What a cold start imports, pinned by module (bench/cold_import times it; this keeps it).

Every Lambda imports app.py. What only some functions need is imported where they first use
it: the socket's edge by the socket functions, phonenumbers by what takes a number, the room
rules by what acts on rooms. A fresh interpreter shows what `import app` and the REST function's
first sign-in pull in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTED = (
    "import json, sys\n{code}\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
    "('chalicelib', 'phonenumbers', 'pynamodb', 'boto3', 'botocore', 'stripe'))))"
)
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "SALON_STAGE": "dev", "PYTHONDONTWRITEBYTECODE": "1"}


def imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LISTED.format(code=code)],
        cwd=ROOT,
        env={**ENV, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_app_loads_no_aws_sdk_no_tables_and_no_room_rules() -> None:
    loaded = imported_by("import app")
    for heavy in (
        "boto3",
        "botocore.client",  # Powertools imports the bare botocore package for its user agent
        "pynamodb",
        "stripe",
        "phonenumbers",
        "chalicelib.domain.rooms",
        "chalicelib.edge.websocket",
        "chalicelib.adapters.dynamo.models",
        "chalicelib.services.reconcile",
    ):
        assert heavy not in loaded, heavy
    assert "chalicelib.edge.schemas" in loaded  # the routes' schemas, which every route checks


def test_the_rest_functions_sign_in_path_leaves_the_room_rules_and_the_socket_out() -> None:
    loaded = imported_by("import app\napp.services().identity")
    assert "chalicelib.adapters.dynamo.models" in loaded
    for heavy in ("chalicelib.domain.rooms", "chalicelib.edge.websocket", "stripe"):
        assert heavy not in loaded, heavy


def test_the_socket_functions_first_message_path_has_what_it_needs() -> None:
    loaded = imported_by("import app\napp.services().realtime\nimport chalicelib.edge.websocket")
    assert {"chalicelib.domain.rooms", "chalicelib.adapters.dynamo.models"} <= loaded
