"""What the packaged template says about wiring: functions, their environments and roles,
stages, queues and schedules. The local stack and the tests read it from here, so the
template is the one truth about how Salon is wired."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Everything `chalice package` and the merge read: a change to any of them repackages.
_INPUTS = ("app.py", "chalicelib", "deploy", ".chalice/config.json", "requirements.txt")

ACCOUNT = "123456789012"  # moto's default account: what the local stack's ARNs carry
REGION = "us-east-1"
PARTITION = "aws"


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in _INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def packaged_template(stage: str = "dev", out: Path | None = None) -> Path:
    """The stage's packaged `sam.json`, repackaged only when app, config or deploy changed.

    Packaging runs in its own process: it imports the models, which read chalicelib's settings
    once, and the local stack must read them only after it has set its environment."""
    out = out or ROOT / "build" / "package" / stage
    stamp = out / "inputs.sha256"
    template = out / "sam.json"
    digest = _inputs_digest()
    if template.exists() and stamp.exists() and stamp.read_text() == digest:
        return template
    command = [sys.executable, "-m", "deploy.package", "--stage", stage, "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True)
    stamp.write_text(digest)
    return template


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str  # the attribute of app.py Lambda calls: "app" for the REST API
    environment: dict[str, str]
    role: str  # the logical id of its IAM role
    events: dict[str, Any] = field(default_factory=dict)


class Template:
    """A packaged template with its intrinsic functions resolved the way CloudFormation would,
    given the physical ids the deployment (or the local stack) has for its resources."""

    def __init__(
        self,
        document: dict[str, Any],
        physical_ids: dict[str, str] | None = None,
        path: Path | None = None,
    ):
        self.document = document
        self.path = path
        self.resources: dict[str, Any] = document["Resources"]
        self._physical = dict(physical_ids or {})

    @classmethod
    def load(cls, path: Path, physical_ids: dict[str, str] | None = None) -> Template:
        return cls(json.loads(path.read_text()), physical_ids, path)

    # --- intrinsic functions -------------------------------------------------------------

    def ref(self, logical_id: str) -> str:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION}
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self._physical:
            return self._physical[logical_id]
        resource = self.resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::ApiGatewayV2::Stage":
            return str(props["StageName"])
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{props['QueueName']}"
        if kind == "AWS::DynamoDB::Table":
            return str(props["TableName"])
        if kind == "AWS::S3::Bucket":
            return str(self.resolve(props["BucketName"]))
        if kind == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{props['TopicName']}"
        return f"{logical_id}-id"

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        if attribute == "Arn":
            if kind == "AWS::DynamoDB::Table":
                return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{props['TableName']}"
            if kind == "AWS::SQS::Queue":
                return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{props['QueueName']}"
            if kind == "AWS::IAM::Role":
                return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical_id}"
            if kind == "AWS::Serverless::Function":
                return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
            if kind == "AWS::S3::Bucket":
                return f"arn:{PARTITION}:s3:::{self.ref(logical_id)}"
        if attribute == "RegionalDomainName" and kind == "AWS::S3::Bucket":
            return f"{self.ref(logical_id)}.s3.{REGION}.amazonaws.com"
        raise KeyError(f"Fn::GetAtt {logical_id}.{attribute} is not modelled")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    # --- what the template wires -----------------------------------------------------------

    def functions(self) -> dict[str, Function]:
        globals_env = (
            self.document.get("Globals", {})
            .get("Function", {})
            .get("Environment", {})
            .get("Variables", {})
        )
        found = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = resource["Properties"]
            variables = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            role = props["Role"]["Fn::GetAtt"][0]
            found[logical_id] = Function(
                logical_id=logical_id,
                handler=str(props["Handler"]).removeprefix("app."),
                environment={k: str(self.resolve(v)) for k, v in variables.items()},
                role=role,
                events=props.get("Events", {}),
            )
        return found

    def by_handler(self) -> dict[str, Function]:
        return {f.handler: f for f in self.functions().values()}

    def policy_documents(self, function: Function) -> list[dict[str, Any]]:
        """Every policy document the function's role carries, inline or attached."""
        role = self.resources[function.role]
        documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
        for resource in self.resources.values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            roles = resource["Properties"].get("Roles", [])
            if {"Ref": function.role} in roles:
                documents.append(resource["Properties"]["PolicyDocument"])
        return [self.resolve(d) for d in documents]

    def websocket_stages(self) -> dict[str, str]:
        """The WebSocket API's stages: physical API id to its stage names (joined by ',')."""
        stages: dict[str, list[str]] = {}
        for resource in self.resources.values():
            if resource["Type"] == "AWS::ApiGatewayV2::Stage":
                props = resource["Properties"]
                stages.setdefault(str(self.resolve(props["ApiId"])), []).append(
                    str(props["StageName"])
                )
        return {api: ",".join(names) for api, names in stages.items()}

    def websocket_routes(self) -> dict[str, str]:
        """Route key ($connect, $default, $disconnect) to the handler it invokes."""
        by_id = self.functions()
        routes = {}
        for resource in self.resources.values():
            if resource["Type"] != "AWS::ApiGatewayV2::Route":
                continue
            target = resource["Properties"]["Target"]
            integration = self.resources[target["Fn::Join"][1][1]["Ref"]]
            _, names = integration["Properties"]["IntegrationUri"]["Fn::Sub"]
            function_id = names["WebsocketHandler"]["Ref"]
            routes[resource["Properties"]["RouteKey"]] = by_id[function_id].handler
        return routes

    def queues(self) -> dict[str, str]:
        """Queue logical id to queue name."""
        return {
            logical_id: str(r["Properties"]["QueueName"])
            for logical_id, r in self.resources.items()
            if r["Type"] == "AWS::SQS::Queue"
        }

    def sqs_sources(self) -> dict[str, str]:
        """Handler to the name of the queue its SQS event source reads."""
        sources = {}
        for function in self.functions().values():
            for event in function.events.values():
                if event["Type"] == "SQS":
                    arn = str(self.resolve(event["Properties"]["Queue"]))
                    sources[function.handler] = arn.rsplit(":", 1)[-1]
        return sources

    def sqs_concurrency(self) -> dict[str, int]:
        """Handler to the most invocations its SQS event source runs at once, where capped."""
        return {
            function.handler: int(event["Properties"]["ScalingConfig"]["MaximumConcurrency"])
            for function in self.functions().values()
            for event in function.events.values()
            if event["Type"] == "SQS" and "ScalingConfig" in event["Properties"]
        }

    def sqs_batch_sizes(self) -> dict[str, int]:
        """Handler to the most messages its SQS event source hands it at once."""
        return {
            function.handler: int(event["Properties"].get("BatchSize", 10))
            for function in self.functions().values()
            for event in function.events.values()
            if event["Type"] == "SQS"
        }

    def partial_batch_handlers(self) -> set[str]:
        """The handlers whose SQS event source reads their partial batch response."""
        return {
            function.handler
            for function in self.functions().values()
            for event in function.events.values()
            if event["Type"] == "SQS"
            and "ReportBatchItemFailures" in event["Properties"].get("FunctionResponseTypes", [])
        }

    def sns_sources(self) -> dict[str, str]:
        """Handler to the ARN of the topic its SNS subscription is to."""
        return {
            function.handler: str(self.resolve(event["Properties"]["Topic"]))
            for function in self.functions().values()
            for event in function.events.values()
            if event["Type"] == "SNS"
        }

    def schedules(self) -> dict[str, str]:
        """Handler to its schedule expression."""
        return {
            function.handler: str(event["Properties"]["Schedule"])
            for function in self.functions().values()
            for event in function.events.values()
            if event["Type"] == "Schedule"
        }

    def table_names(self) -> set[str]:
        return {
            str(r["Properties"]["TableName"])
            for r in self.resources.values()
            if r["Type"] == "AWS::DynamoDB::Table"
        }
