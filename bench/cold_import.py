"""What every Lambda cold start pays to import app.py, against a minimal Chalice app with boto3,
both imported from the packaged Lambda zip as Lambda runs it.

Each sample is a fresh interpreter that times only the import (interpreter start-up is the same
for both and is left out). It runs without the venv's site-packages (`-S`), from the zip's files
unpacked into a folder, and may not write `__pycache__` (Lambda's /var/task is read-only): what
is not compiled in the zip is compiled on every cold start. The zip is measured as packaged
(with the bytecode `deploy/package.py` ships) and, for comparison, with its bytecode taken out.
Samples alternate between the rows so that machine noise hits them all.

    .venv/bin/python -m bench.cold_import [--runs 21] [--zip build/package/dev/deployment.zip]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SALON = "import app"
# What a function also imports before its first answer: the container imports each service
# where it is built, and the socket functions import the socket's edge when they first run, so
# `import app` alone is not what a cold start pays. These rows are.
SALON_WS = "import app\napp.services().realtime\nimport chalicelib.edge.websocket"
SALON_REST = "import app\napp.services().identity"
BASELINE = "import boto3\nfrom chalice import Chalice\napp = Chalice(app_name='baseline')"
TIMER = "import time\nt = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"

# As deployed: a region and a stage, no endpoints; nothing may write bytecode.
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "SALON_STAGE": "dev",
    "SALON_TABLE_PREFIX": "salon-dev-",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def unpack(deployment_zip: Path, into: Path, bytecode: bool) -> Path:
    with zipfile.ZipFile(deployment_zip) as archive:
        for entry in archive.infolist():
            if bytecode or not entry.filename.endswith(".pyc"):
                archive.extract(entry, into)
    return into


def sample(code: str, task: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-S", "-c", TIMER.format(code=code)],
        cwd=task,
        env={**LAMBDA_ENV, "PYTHONPATH": str(task)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--zip", type=Path, help="a packaged deployment.zip (default: package dev)")
    args = parser.parse_args()
    if args.zip is None:
        from deploy.wiring import packaged_template

        args.zip = packaged_template("dev").parent / "deployment.zip"
    with tempfile.TemporaryDirectory() as scratch:
        shipped = unpack(args.zip, Path(scratch) / "shipped", bytecode=True)
        bare = unpack(args.zip, Path(scratch) / "bare", bytecode=False)
        rows = {
            "baseline: boto3 + minimal Chalice app": (BASELINE, shipped),
            "salon app.py, as packaged (bytecode shipped)": (SALON, shipped),
            "  + the REST function's sign-in built": (SALON_REST, shipped),
            "  + the socket functions' first message built": (SALON_WS, shipped),
            "salon app.py, no bytecode in the zip": (SALON, bare),
            "baseline, no bytecode in the zip": (BASELINE, bare),
        }
        samples: dict[str, list[float]] = {label: [] for label in rows}
        for _ in range(args.runs):
            for label, (code, task) in rows.items():
                samples[label].append(sample(code, task))
    base = statistics.median(samples["baseline: boto3 + minimal Chalice app"])
    print(f"runs per row: {args.runs}; ratios against the baseline as packaged")
    print(f"the zip: {args.zip}")
    for label, times in samples.items():
        median = statistics.median(times)
        print(f"{label:<48}median {median * 1000:6.0f} ms   {median / base:.2f}x")


if __name__ == "__main__":
    main()
