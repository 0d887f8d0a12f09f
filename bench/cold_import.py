"""What every Lambda cold start pays to import app.py, against a minimal Chalice app with boto3.

Each sample is a fresh interpreter that times only the import (interpreter start-up is the same
for both and is left out). Samples alternate between the two so that machine noise hits both.

    .venv/bin/python -m bench.cold_import [--runs 21]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SALON = "import app"
# The alternative Salon dropped (docs/architecture.md, "Tracing"): Powertools' Tracer, which
# loads the X-Ray SDK. Measured only where the SDK is installed (the dev tools bring it).
SALON_TRACED = "import app\nfrom aws_lambda_powertools import Tracer\nTracer(service='salon')"
BASELINE = "import boto3\nfrom chalice import Chalice\napp = Chalice(app_name='baseline')"
TIMER = "import time\nt = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"

# As deployed: a region and a stage, no endpoints. (Lambda's active tracing needs no import.)
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "SALON_STAGE": "dev",
    "SALON_TABLE_PREFIX": "salon-dev-",
    "PYTHONDONTWRITEBYTECODE": "0",
}


def sample(code: str, extra_env: dict[str, str] | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "SALON_"))}
    env.update(LAMBDA_ENV)
    env.update(extra_env or {})
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with_tracer = importlib.util.find_spec("aws_xray_sdk") is not None
    # Warm the bytecode caches, as a deployed package has them.
    sample(SALON), sample(BASELINE)
    if with_tracer:
        sample(SALON_TRACED)
    traced: list[float] = []
    plain: list[float] = []
    baseline: list[float] = []
    for _ in range(args.runs):
        baseline.append(sample(BASELINE))
        plain.append(sample(SALON))
        if with_tracer:
            traced.append(sample(SALON_TRACED))
    b = statistics.median(baseline)
    print(f"runs per side: {args.runs}")
    print(f"baseline: boto3 + minimal Chalice app        median {b * 1000:6.0f} ms   1.00x")
    rows = [("salon app.py (as deployed)", plain)]
    if with_tracer:
        rows.append(("salon app.py + Powertools Tracer (dropped)", traced))
    for label, samples in rows:
        m = statistics.median(samples)
        print(f"{label:<43}median {m * 1000:6.0f} ms   {m / b:.2f}x")


if __name__ == "__main__":
    main()
