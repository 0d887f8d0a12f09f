"""The packaged template is the one truth about wiring: every address the code builds from a
function's settings is one the template defines, for every function it packages."""

from __future__ import annotations

import pytest
from chalice.test import Client

from chalicelib.adapters.dynamo.models import ALL_MODELS
from chalicelib.config import settings
from deploy.template import short_name
from deploy.wiring import Function, Template
from tests.support.events import sqs_event
from tests.support.iam_replay import deployed_settings, setting_problems


def functions(template: Template) -> list[Function]:
    return sorted(template.functions().values(), key=lambda f: f.logical_id)


def test_every_function_posts_to_the_websocket_stage_the_template_creates(
    packaged: Template,
) -> None:
    problems = [
        problem
        for function in functions(packaged)
        for problem in setting_problems(packaged, function, "management_url")
    ]
    assert problems == []


@pytest.mark.parametrize(
    "setting", ["timers_queue_url", "notifications_queue_url", "fanout_queue_url"]
)
def test_every_function_queues_work_on_a_queue_the_template_creates(
    packaged: Template, setting: str
) -> None:
    problems = [
        problem
        for function in functions(packaged)
        for problem in setting_problems(packaged, function, setting)
    ]
    assert problems == []


def test_the_fanout_queue_is_fifo_read_by_the_fanout_function_two_chunks_at_a_time(
    packaged: Template,
) -> None:
    queue = packaged.resources["FanoutQueue"]["Properties"]
    dead_letters = packaged.resources["FanoutDeadLetterQueue"]["Properties"]
    assert queue["FifoQueue"] is dead_letters["FifoQueue"] is True
    assert packaged.sqs_sources()["fanout"] == queue["QueueName"]
    (source,) = packaged.by_handler()["fanout"].events.values()
    # Lambda refuses a batching window on a FIFO queue.
    assert "MaximumBatchingWindowInSeconds" not in source["Properties"]
    assert packaged.sqs_batch_sizes()["fanout"] == 2
    assert packaged.sqs_concurrency() == {"fanout": 16}


def test_every_function_names_only_tables_the_template_creates(packaged: Template) -> None:
    local_prefix = settings().table_prefix
    missing = {
        (function.logical_id, name)
        for function in functions(packaged)
        for name in (
            deployed_settings(function).table_name(short_name(model, local_prefix))
            for model in ALL_MODELS
        )
        if name not in packaged.table_names()
    }
    assert missing == set()


@pytest.mark.parametrize("secret", ["SALON_JWT_SECRET"])
def test_every_function_that_checks_tokens_is_given_the_signing_secret(
    packaged: Template, secret: str
) -> None:
    readers = [packaged.by_handler()[h] for h in ("app", "ws_connect")]
    assert [p for f in readers for p in setting_problems(packaged, f, secret)] == []


def test_the_asyncapi_servers_name_the_websocket_stage_the_template_creates(
    packaged: Template,
) -> None:
    from tests.support import contract

    (stage,) = packaged.websocket_stages().values()
    servers = contract.asyncapi()["servers"]
    assert {name: s["pathname"] for name, s in servers.items()} == {
        name: f"/{stage}" for name in servers
    }


def test_a_queue_handler_that_reports_failed_messages_has_an_event_source_that_reads_it(
    packaged: Template, client: Client
) -> None:
    """A partial batch response that Lambda is not told to read is ignored: the batch counts as
    done and the failed messages are lost. A handler that reports none must not be set to,
    or every batch it finishes would come back."""
    for handler, queue in packaged.sqs_sources().items():
        nothing = sqs_event([{"kind": "nothing to do"}], queue)
        answer = client.lambda_.invoke(handler, nothing).payload
        reports = isinstance(answer, dict) and "batchItemFailures" in answer
        assert reports == (handler in packaged.partial_batch_handlers()), handler
    assert {"notifications", "fanout"} <= packaged.partial_batch_handlers()
