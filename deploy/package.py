"""`make package`: the SAM template Chalice writes, merged with Salon's tables, with one role
per function."""

from __future__ import annotations

import argparse
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from deploy.operations import add_operations
from deploy.roles import assign_roles
from deploy.template import (
    merge_template,
    point_handlers_at_stage_topics,
    point_timers_at_stage_queue,
    wire_websocket_stage,
)

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
DIST_INFO = re.compile(r"^([^/]+)-([^/-]+)\.dist-info/METADATA$")

OFFLINE_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "packaging-offline",
    "AWS_SECRET_ACCESS_KEY": "packaging-offline",
}


def package(stage: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    merge = out.parent / f"merge-{stage}.json"
    merge.write_text(json.dumps(merge_template(stage), indent=2))
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "chalice"),
            "package",
            "--stage",
            stage,
            "--pkg-format",
            "cloudformation",
            "--template-format",
            "json",
            "--merge-template",
            str(merge),
            str(out),
        ],
        check=True,
        env={**os.environ, **OFFLINE_AWS},
    )
    template_path = out / "sam.json"
    template = json.loads(template_path.read_text())
    ship_bytecode(out / "deployment.zip", runtimes(template))
    point_timers_at_stage_queue(template)
    point_handlers_at_stage_topics(template)
    wire_websocket_stage(template)
    # Roles first: operations adds per-function grants (the DLQ send) to each function's own role.
    assign_roles(template, stage)
    add_operations(template, stage)
    template_path.write_text(json.dumps(template, indent=2))
    return template_path


def runtimes(template: dict[str, object]) -> set[str]:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    return {
        r["Properties"]["Runtime"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }


def ship_bytecode(deployment_zip: Path, function_runtimes: set[str]) -> int:
    """Put every module's bytecode in the zip; returns how many modules were compiled.

    Lambda unpacks the zip into a read-only /var/task, where Python cannot write __pycache__:
    without bytecode in the zip, every cold start compiles every module it imports (Salon's,
    PynamoDB, botocore...). The files are compiled by this Python, which must be the runtime's
    (the magic number differs between minor versions), and marked unchecked-hash: the zip is
    never edited in place, so the interpreter loads them without looking at the sources' times.
    Whatever __pycache__ the working tree held (Chalice copies chalicelib as it finds it) is
    dropped first."""
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if function_runtimes != {runtime}:
        raise SystemExit(f"packaging runs {runtime}, the functions run {sorted(function_runtimes)}")
    compiled = 0
    with tempfile.TemporaryDirectory() as scratch:
        rewritten = Path(scratch) / "deployment.zip"
        with (
            zipfile.ZipFile(deployment_zip) as source,
            zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for entry in source.infolist():
                if "__pycache__/" in entry.filename or entry.filename.endswith(".pyc"):
                    continue
                data = source.read(entry)
                target.writestr(entry, data)
                if not entry.filename.endswith(".py"):
                    continue
                path = Path(scratch) / "src" / entry.filename
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                try:
                    pyc = py_compile.compile(
                        str(path),
                        dfile=entry.filename,
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                    )
                except py_compile.PyCompileError:
                    continue  # a file that is not Python 3 source (a template, a test fixture)
                name = Path(pyc).relative_to(Path(scratch) / "src").as_posix()
                info = zipfile.ZipInfo(name, date_time=entry.date_time)
                info.external_attr = entry.external_attr
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, Path(pyc).read_bytes())
                compiled += 1
        shutil.move(rewritten, deployment_zip)
    return compiled


def lint(template: Path) -> None:
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "cfn-lint"), "--", str(template)], check=True)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = LOCK) -> dict[str, str]:
    """Every package the lock pins, by canonical name."""
    pins = (PIN.match(line) for line in lock.read_text().splitlines())
    return {canonical(m[1]): m[2] for m in pins if m}


def shipped(deployment_zip: Path) -> dict[str, str]:
    """Every distribution installed at the top of the Lambda zip, by canonical name."""
    with zipfile.ZipFile(deployment_zip) as archive:
        found = (DIST_INFO.match(name) for name in archive.namelist())
        return {canonical(m[1]): m[2] for m in found if m}


def lock_drift(deployment_zip: Path, lock: Path = LOCK) -> list[str]:
    want, have = locked(lock), shipped(deployment_zip)
    return [
        f"{name}: locked {want.get(name, '-')}, shipped {have.get(name, '-')}"
        for name in sorted(want.keys() | have.keys())
        if want.get(name) != have.get(name)
    ]


def check_lock(deployment_zip: Path) -> None:
    drift = lock_drift(deployment_zip)
    if drift:
        raise SystemExit("the Lambda zip differs from requirements.txt:\n" + "\n".join(drift))


def run_checkov(checkov: Path, template: Path) -> None:
    """0 failed checks; every suppression carries its reason in the template's Metadata."""
    subprocess.run(
        [str(checkov), "-f", str(template), "--framework", "cloudformation", "--compact",
         "--quiet", "--skip-download"],
        check=True,
    )  # fmt: skip


def check_tables(template: Path, stage: str) -> None:
    resources = json.loads(template.read_text())["Resources"]
    declared = {
        r["Properties"]["TableName"]
        for r in resources.values()
        if r.get("Type") == "AWS::DynamoDB::Table"
    }
    wanted = {
        t["Properties"]["TableName"]
        for t in merge_template(stage)["Resources"].values()
        if t.get("Type") == "AWS::DynamoDB::Table"
    }
    missing = wanted - declared
    if missing:
        raise SystemExit(f"tables missing from the template: {sorted(missing)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    parser.add_argument("--out", type=Path, default=Path("build/package/dev"))
    parser.add_argument("--lint", action="store_true", help="run cfn-lint on the result")
    parser.add_argument("--checkov", type=Path, help="the checkov to run on the result")
    args = parser.parse_args()
    template = package(args.stage, args.out)
    check_tables(template, args.stage)
    check_lock(args.out / "deployment.zip")
    if args.lint:
        lint(template)
    if args.checkov:
        run_checkov(args.checkov, template)
    checked = ["the zip matches the lock"]
    checked += ["lint clean"] * args.lint + ["checkov clean"] * bool(args.checkov)
    print(f"{template}: {args.stage} packaged, " + ", ".join(checked))


if __name__ == "__main__":
    main()
