"""The lock (requirements.txt) is what the Lambda zip ships: complete, hashed, and current."""

from __future__ import annotations

import re
from pathlib import Path

from deploy.package import PIN, canonical, locked

ROOT = Path(__file__).resolve().parents[2]


def top_level() -> dict[str, str]:
    pins = (PIN.match(line) for line in (ROOT / "requirements.in").read_text().splitlines())
    return {canonical(m[1]): m[2] for m in pins if m}


def test_the_lock_pins_every_top_level_requirement_at_its_version() -> None:
    lock = locked()
    assert top_level()
    for name, version in top_level().items():
        assert lock.get(name) == version, name


def test_the_lock_carries_transitive_packages_too() -> None:
    assert {"botocore", "urllib3", "requests"} <= locked().keys()


def test_every_locked_package_has_a_hash() -> None:
    text = (ROOT / "requirements.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    pinned = [e for e in entries if PIN.match(e)]
    assert len(pinned) == len(locked())
    for entry in pinned:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]


def test_development_tools_stay_out_of_the_lock() -> None:
    lock = locked()
    for tool in ("chalice", "moto", "pytest", "aws-xray-sdk", "pip", "setuptools"):
        assert tool not in lock, tool


def test_app_starts_without_the_xray_sdk() -> None:
    """The zip no longer ships aws-xray-sdk: nothing at start-up may import it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('aws_xray_sdk', 'wrapt'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import app\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_environment_running_the_tests_has_the_locked_versions() -> None:
    """`make` installs the lock and holds the dev tools to it: what the tests run is what ships."""
    from importlib.metadata import PackageNotFoundError, version

    drift = {}
    for name, pinned in locked().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            drift[name] = (pinned, installed)
    assert drift == {}
