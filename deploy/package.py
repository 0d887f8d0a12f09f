"""`make package`: the SAM template Chalice writes, merged with Salon's tables, with one role
per function."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from deploy.roles import assign_roles
from deploy.template import merge_template, point_timers_at_stage_queue, wire_websocket_stage

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
    point_timers_at_stage_queue(template)
    wire_websocket_stage(template)
    assign_roles(template, stage)
    template_path.write_text(json.dumps(template, indent=2))
    return template_path


def lint(template: Path) -> None:
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "cfn-lint"), "--", str(template)], check=True)


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
    args = parser.parse_args()
    template = package(args.stage, args.out)
    check_tables(template, args.stage)
    if args.lint:
        lint(template)
    print(f"{template}: {args.stage} packaged" + (", lint clean" if args.lint else ""))


if __name__ == "__main__":
    main()
