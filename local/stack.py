"""`make dev`: the whole of Salon on loopback, in one process that one Ctrl-C stops.

- an embedded AWS (moto server) with every table created from the deployment's models;
- the REST API, served from the Chalice app by Chalice's own local server;
- a local API Gateway WebSocket gateway that invokes the app's WebSocket handlers and serves
  the @connections API the app posts back through.

The wiring comes from the packaged template (deploy/wiring.py): each function's environment,
the WebSocket stage and routes, the queues and which handler reads them. Only endpoints (and
secrets, given directly) differ from AWS: the app itself is not told it is local.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"
FOUNDER_PHONE = "+14155550100"
ACCOUNT = "123456789012"  # moto's default account
API_ID = "local"  # the local gateway's API id, standing for the template's WebsocketAPI
LOCAL_MAX_POLLERS = 4
# What the local stack gives instead of the template: endpoints, secret values (the template
# names SSM parameters), and the stage /health reports, so nobody takes it for a deployment.
LOCAL_ONLY = (
    "AWS_ENDPOINT_URL",
    "SALON_WS_MANAGEMENT_URL",
    "SALON_STRIPE_API_BASE",
    "SALON_JANUS_URL",
    "SALON_JANUS_ADMIN_URL",
    "SALON_APP_URL",
    "SALON_STAGE",
)


def free_port(host: str = LOCALHOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


STRIPE_KEY = "sk_test_salon_local_stack"
STRIPE_PUBLISHABLE_KEY = "pk_test_salon_local_stack"  # the web client's, for the emulator
STRIPE_WEBHOOK_SECRET = "whsec_local_platform"
STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_local_connect"


@dataclass
class StackConfig:
    host: str = LOCALHOST
    rest_port: int = 8000
    ws_port: int = 8001
    aws_port: int = 0
    stripe_port: int = 0
    idle_timeout_s: float = 600.0
    seed_founder: bool = True
    founder_phone: str = FOUNDER_PHONE
    template: Path | None = None  # the packaged sam.json; None packages the dev stage

    def resolved(self) -> StackConfig:
        """Ports of 0 become free ports now: the app's settings must name them up front."""
        return StackConfig(
            host=self.host,
            rest_port=self.rest_port or free_port(self.host),
            ws_port=self.ws_port or free_port(self.host),
            aws_port=self.aws_port or free_port(self.host),
            stripe_port=self.stripe_port or free_port(self.host),
            idle_timeout_s=self.idle_timeout_s,
            seed_founder=self.seed_founder,
            founder_phone=self.founder_phone,
            template=self.template,
        )


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config.resolved()
        self._moto: Any = None
        self._janus: Any = None
        self._rest: Any = None
        self._gateway: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self.info: dict[str, Any] = {}
        # Set once the stack is seeded and wired: until then the REST server answers 503.
        self.ready = threading.Event()
        from deploy.wiring import Template, packaged_template

        c = self.config
        path = c.template or packaged_template("dev")
        document = Template.load(path)
        # The physical ids the template's Refs resolve to here: the gateway, moto's queues.
        queues = {
            logical_id: f"http://{c.host}:{c.aws_port}/{ACCOUNT}/{name}"
            for logical_id, name in document.queues().items()
        }
        self.wiring = Template.load(path, {"WebsocketAPI": API_ID, **queues})
        self.ws_stage = self.wiring.websocket_stages()[API_ID]
        self.ws_routes = self.wiring.websocket_routes()
        self.sqs_sources = self.wiring.sqs_sources()
        self.partial_batches = self.wiring.partial_batch_handlers()
        self.sns_sources = self.wiring.sns_sources()

    def environment(self) -> dict[str, str]:
        """The REST API function's environment from the template (all functions share one
        process here), with local endpoints and the secrets' values instead of their names."""
        c = self.config
        deployed = self.wiring.by_handler()["app"].environment
        return {
            **{k: v for k, v in deployed.items() if not k.endswith("_PARAMETER")},
            "AWS_ENDPOINT_URL": f"http://{c.host}:{c.aws_port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SALON_STAGE": os.environ.get("SALON_STAGE", "local"),
            "SALON_JWT_SECRET": os.environ.get("SALON_JWT_SECRET") or secrets.token_urlsafe(32),
            "SALON_WS_MANAGEMENT_URL": f"http://{c.host}:{c.ws_port}/{self.ws_stage}",
            "SALON_STRIPE_SECRET_KEY": STRIPE_KEY,
            "SALON_STRIPE_API_BASE": f"http://{c.host}:{c.stripe_port}",
            "SALON_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "SALON_STRIPE_CONNECT_WEBHOOK_SECRET": STRIPE_CONNECT_WEBHOOK_SECRET,
            "SALON_APP_URL": f"http://{c.host}:{c.rest_port}",
            # The bucket's public read, served by the REST server (local/webclient.py).
            "SALON_PHOTOS_URL": f"http://{c.host}:{c.rest_port}/_local/photos",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "SalonLocal",
        }

    def start(self) -> dict[str, Any]:
        # The SFU first: the app's settings name its endpoints and secrets.
        from local.janus import JanusConfig, JanusProcess

        given = {
            field: value
            for field, name in (
                ("api_secret", "SALON_JANUS_API_SECRET"),
                ("admin_secret", "SALON_JANUS_ADMIN_SECRET"),
            )
            if (value := os.environ.get(name))
        }
        self._janus = JanusProcess(JanusConfig(host=self.config.host, **given)).start()
        os.environ.update(self.environment())
        os.environ.update(
            {
                "SALON_JANUS_URL": self._janus.url,
                "SALON_JANUS_ADMIN_URL": self._janus.admin_url,
                "SALON_JANUS_API_SECRET": self._janus.config.api_secret,
                "SALON_JANUS_ADMIN_SECRET": self._janus.config.admin_secret,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        c = self.config
        record_to = os.environ.get("SALON_RECORD_AWS_CALLS")
        if record_to:  # the tests' IAM replay: every AWS call, tagged with its function
            from local import aws_calls

            aws_calls.install(Path(record_to), local_api_id=API_ID)
        from local import moto_atomic, service_limits
        from local.s3_post_policy import MotoServer  # moto, with S3's POST policy checks

        moto_atomic.install()
        service_limits.install()  # AWS's request size limits, which moto does not all check

        # The embedded AWS's per-request access log would drown the app's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = MotoServer(ip_address=c.host, port=c.aws_port, verbose=False)
        self._moto.start()

        import app as app_module
        from local.tables import create_photos_bucket, create_tables

        tables = create_tables()
        create_photos_bucket()
        from local.outbox import create_push_applications, point_push_events_at

        push_applications = [
            os.environ[name]
            for name in ("SALON_PUSH_APNS_APPLICATION_ARN", "SALON_PUSH_FCM_APPLICATION_ARN")
            if os.environ.get(name)
        ]
        create_push_applications(push_applications)
        if "push_endpoint_events" in self.sns_sources:
            point_push_events_at(self.sns_sources["push_endpoint_events"], push_applications)
        app = app_module.app
        _register_local_routes(app)
        self._start_rest(app)
        self._start_gateway(app)
        self._start_queues(app)
        self._start_topics(app)
        self._start_stripe()
        self.info = {
            "rest": f"http://{c.host}:{c.rest_port}",
            "websocket": self._gateway.websocket_url,
            "aws": f"http://{c.host}:{c.aws_port}",
            "stripe": f"http://{c.host}:{c.stripe_port}",
            "janus": self._janus.url,
            "janus_admin": self._janus.admin_url,
            "janus_pid": self._janus.pid,
            "web": f"http://{c.host}:{c.rest_port}/app/",
            "tables": tables,
            # Schedules are not fired locally (nor by moto): invoke them from /_local/admin.
            "schedules": self.wiring.schedules(),
        }
        if c.seed_founder:
            self.info["founder"] = self._seed_founder(app)
        self.ready.set()
        return self.info

    def _start_rest(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        from local.readiness import hold_until_ready
        from local.webclient import serve_web_client

        config = Config.create(chalice_stage="local", app_name="salon")
        self._rest = create_local_server(app, config, self.config.host, self.config.rest_port)
        serve_web_client(self._rest, self._web_client_settings)
        hold_until_ready(self._rest, self.ready)
        thread = threading.Thread(target=self._rest.server.serve_forever, name="rest", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _web_client_settings(self) -> dict[str, Any]:
        """web/'s /app/config.json: where the browser finds the WebSocket and Stripe."""
        return {
            "websocket": self.info.get("websocket"),
            "stripe": {"api": self.info.get("stripe"), "publishable_key": STRIPE_PUBLISHABLE_KEY},
            "ice_servers": [],
            "local": True,
        }

    def _start_gateway(self, app: Any) -> None:
        from chalice.local import LambdaContext

        from local.gateway import LocalWebSocketGateway

        def invoke(route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
            name = self.ws_routes[route_key]
            result: dict[str, Any] | None = app.handler_map[name](
                event, LambdaContext(name, 512, max_runtime_ms=30_000)
            )
            return result

        self._gateway = LocalWebSocketGateway(
            invoke,
            host=self.config.host,
            port=self.config.ws_port,
            stage=self.ws_stage,
            api_id=API_ID,
            idle_timeout_s=self.config.idle_timeout_s,
        )
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._gateway.start())
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="gateway", daemon=True)
        thread.start()
        self._threads.append(thread)
        if not started.wait(10):
            raise RuntimeError("the WebSocket gateway did not start")

    def _start_queues(self, app: Any) -> None:
        """Lambda's SQS event sources, locally: each handler polls the queue the template
        points it at."""
        self._stopping = threading.Event()
        concurrency = self.wiring.sqs_concurrency()
        batch_sizes = self.wiring.sqs_batch_sizes()
        for handler, queue in self.sqs_sources.items():
            # Lambda runs up to the mapping's MaximumConcurrency batches at once; one process
            # on a small machine gains little past a few (all of them share one GIL).
            pollers = min(concurrency.get(handler, 1), LOCAL_MAX_POLLERS)
            for _ in range(pollers):
                self._start_queue(app, handler, queue, batch_sizes.get(handler, 10))

    def _start_queue(self, app: Any, handler: str, queue: str, batch_size: int) -> None:
        import boto3
        from chalice.local import LambdaContext

        sqs = boto3.client("sqs", region_name="us-east-1")
        fifo = {"FifoQueue": "true"} if queue.endswith(".fifo") else {}
        queue_url = sqs.create_queue(QueueName=queue, Attributes=fifo)["QueueUrl"]

        def poll() -> None:
            while not self._stopping.is_set():
                # As Lambda's records: with the system attributes (a FIFO message's group).
                batch = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=batch_size,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                if not batch:
                    continue
                event = {"Records": [_sqs_record(m, queue_url) for m in batch]}
                try:
                    answer = app.handler_map[handler](
                        event, LambdaContext(handler, 512, max_runtime_ms=900_000)
                    )
                except Exception:  # as on AWS: the batch stays and comes back later
                    logging.getLogger("salon.local").exception("%s failed", handler)
                    continue
                # A partial batch response (where the template turns it on): the messages it
                # names stay and come back; the rest are deleted.
                failed = set()
                if handler in self.partial_batches and isinstance(answer, dict):
                    failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                done = [m for m in batch if m["MessageId"] not in failed]
                if done:
                    sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(done)
                        ],
                    )

        thread = threading.Thread(target=poll, name=handler, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_topics(self, app: Any) -> None:
        """Lambda's SNS subscriptions, locally: moto's SNS delivers each topic to a queue of its
        own, and each notification on it invokes the handler as Lambda would (an asynchronous
        invocation: one that fails is logged and dropped, where AWS retries then dead-letters)."""
        import boto3
        from chalice.local import LambdaContext

        from local.sns_events import lambda_sns_event

        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        for handler, topic_arn in self.sns_sources.items():
            sns.create_topic(Name=topic_arn.rsplit(":", 1)[-1])
            queue_url = sqs.create_queue(QueueName=f"local-sns-{handler}")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            sns.subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
            )

            def poll(handler: str = handler, queue_url: str = queue_url) -> None:
                while not self._stopping.is_set():
                    batch = sqs.receive_message(
                        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                    ).get("Messages", [])
                    for message in batch:
                        event = lambda_sns_event(json.loads(message["Body"]))
                        try:
                            app.handler_map[handler](event, LambdaContext(handler, 256))
                        except Exception:
                            logging.getLogger("salon.local").exception("%s failed", handler)
                        sqs.delete_message(
                            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                        )

            thread = threading.Thread(target=poll, name=handler, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _start_stripe(self) -> None:
        """The Stripe emulator, its webhooks signed and sent to the app's two endpoints."""
        import urllib.parse
        import urllib.request

        from local.stripe import serve_in_thread

        c = self.config
        _, self._stop_stripe = serve_in_thread(c.host, c.stripe_port)
        rest = f"http://{c.host}:{c.rest_port}"
        for name, path, secret, connect in (
            ("platform", "/webhooks/stripe", STRIPE_WEBHOOK_SECRET, "false"),
            ("connect", "/webhooks/stripe-connect", STRIPE_CONNECT_WEBHOOK_SECRET, "true"),
        ):
            form = urllib.parse.urlencode(
                {"url": rest + path, "secret": secret, "connect": connect}
            ).encode()
            request = urllib.request.Request(
                f"http://{c.host}:{c.stripe_port}/_config/webhooks/{name}", data=form
            )
            urllib.request.urlopen(request, timeout=10).close()

    def _seed_founder(self, app: Any) -> dict[str, Any]:
        from chalice.local import LambdaContext

        event = {
            "phone": self.config.founder_phone,
            "name": "Founder",
            "username": "founder",
            "invites": 10,
        }
        result = app.handler_map["admin_create_founder"](
            event, LambdaContext("admin_create_founder", 256)
        )
        return {"phone": self.config.founder_phone, "username": "founder", "ok": result["ok"]}

    def stop(self) -> None:
        """Stop everything; a part that will not stop in time is abandoned (its threads are
        daemons), so that Ctrl-C or SIGTERM always ends the process."""
        if hasattr(self, "_stopping"):
            self._stopping.set()
        if hasattr(self, "_stop_stripe"):
            self._stop_stripe()
        if self._loop is not None and self._gateway is not None:
            stopping = asyncio.run_coroutine_threadsafe(self._gateway.stop(), self._loop)
            try:
                stopping.result(15)
            except (TimeoutError, RuntimeError):
                logging.getLogger("salon.local").warning("the gateway did not stop in time")
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._rest is not None:
            self._rest.server.shutdown()
            self._rest.server.server_close()
        if self._moto is not None:
            self._moto.stop()
        if self._janus is not None:
            self._janus.stop()
        for thread in self._threads:
            thread.join(5)


def _sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}",
        "awsRegion": "us-east-1",
    }


def _register_local_routes(app: Any) -> None:
    """Routes of the local stage only: they live here, never in app.py, so no deployed stage
    has them."""
    from chalice.app import Response
    from chalice.local import LambdaContext

    from local.outbox import disable_device, latest_code, messages, pushes

    @app.route("/_local/admin/{function}", methods=["POST"])
    def local_admin(function: str) -> Any:
        """What an operator does from the Lambda console: invoke an admin function."""
        if not function.startswith("admin_") or function not in app.handler_map:
            return Response(
                {"error": {"code": "not_found", "message": "No such function."}}, status_code=404
            )
        raw = app.current_request.raw_body or b"{}"
        try:
            event = json.loads(raw)
        except ValueError:
            return Response(
                {"error": {"code": "invalid_request", "message": "Not JSON."}}, status_code=400
            )
        return app.handler_map[function](event, LambdaContext(function, 256))

    @app.route("/_local/ready", methods=["GET"])
    def local_ready() -> dict[str, Any]:
        """Served only once the stack is ready (local/readiness.py answers 503 before)."""
        return {"ready": True}

    @app.route("/_local/sms/{phone}", methods=["GET"])
    def local_sms_outbox(phone: str) -> dict[str, Any]:
        number = "+" + phone.lstrip("+ ").replace("%2B", "")
        return {"phone": number, "latest_code": latest_code(number), "messages": messages(number)}

    @app.route("/_local/push/{token}", methods=["GET"])
    def local_push_outbox(token: str) -> dict[str, Any]:
        """The push outbox of one device: what its app would have shown, newest first."""
        return {"token": token, "items": pushes(token)}

    @app.route("/_local/push/{token}/disable", methods=["POST"])
    def local_push_disable(token: str) -> dict[str, Any]:
        """APNs or FCM telling SNS the token is dead: its endpoint is disabled."""
        return {"token": token, "disabled": disable_device(token)}


JSON_HEADER = "-H 'Content-Type: application/json'"  # as the README writes every JSON request


def banner(info: dict[str, Any]) -> str:
    founder = info.get("founder", {})
    phone = str(founder.get("phone", FOUNDER_PHONE))
    return "\n".join(
        [
            "Salon is running on loopback:",
            f"  Web client      {info['web']}   (open it in two tabs: see the README)",
            f"  REST API        {info['rest']}        (try {info['rest']}/health)",
            f"  Readiness       {info['rest']}/_local/ready  (503 while starting, then 200)",
            f"  WebSocket       {info['websocket']}   (connect with ?token=<access token>)",
            f"  Embedded AWS    {info['aws']}        ({len(info['tables'])} DynamoDB tables)",
            f"  Stripe (local)  {info['stripe']}        (the emulator; webhooks to the REST API)",
            f"  SMS outbox      {info['rest']}/_local/sms/<phone>  (the latest sign-in code)",
            f"  Push outbox     {info['rest']}/_local/push/<device token>  (what it was sent)",
            f"  Admin functions POST {info['rest']}/_local/admin/<name>  (the console's Test tab)",
            "",
            f"Sign in as the founder (@{founder.get('username')}, {phone}):",
            f"  curl -X POST {info['rest']}/auth/sign-in {JSON_HEADER} \\",
            f'       -d \'{{"phone": "{phone}"}}\'',
            f"  curl {info['rest']}/_local/sms/{phone.lstrip('+')}   # its latest_code",
            f"  curl -X POST {info['rest']}/auth/verify {JSON_HEADER} \\",
            f'       -d \'{{"phone": "{phone}", "code": "<the latest_code>"}}\'',
            "",
            "Ctrl-C stops everything.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run Salon's whole stack on loopback.")
    env = os.environ.get
    parser.add_argument("--rest-port", type=int, default=int(env("SALON_REST_PORT", "8000")))
    parser.add_argument("--ws-port", type=int, default=int(env("SALON_WS_PORT", "8001")))
    parser.add_argument("--aws-port", type=int, default=int(env("SALON_AWS_PORT", "8002")))
    parser.add_argument("--stripe-port", type=int, default=int(env("SALON_STRIPE_PORT", "8420")))
    parser.add_argument(
        "--idle-timeout", type=float, default=float(env("SALON_WS_IDLE_TIMEOUT_S", "600"))
    )
    parser.add_argument("--no-seed", action="store_true", help="start with no founder account")
    parser.add_argument(
        "--template", type=Path, help="the packaged sam.json (default: package the dev stage)"
    )
    parser.add_argument(
        "--ready-line", action="store_true", help="print one JSON line when ready (for tests)"
    )
    args = parser.parse_args(argv)
    stack = LocalStack(
        StackConfig(
            rest_port=args.rest_port,
            ws_port=args.ws_port,
            aws_port=args.aws_port,
            stripe_port=args.stripe_port,
            idle_timeout_s=args.idle_timeout,
            seed_founder=not args.no_seed,
            template=args.template,
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        info = stack.start()
        if args.ready_line:
            print("SALON_STACK_READY " + json.dumps(info), flush=True)
        else:
            print(banner(info), flush=True)
        stop.wait()
    finally:
        print("Stopping Salon...", file=sys.stderr, flush=True)
        stack.stop()


if __name__ == "__main__":
    main()
