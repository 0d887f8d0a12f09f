"""SQS batches, one message at a time: a message that fails is reported back to Lambda
(ReportBatchItemFailures, set on the event source in deploy/template.py), so only it is
delivered again and the others, done, are not redone. On a FIFO queue, the messages after a
failed one in its message group are reported failed too, unprocessed, so a group's order
holds; other groups' messages go on."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, cast

from chalice.app import SQSEvent

logger = logging.getLogger("salon.queues")


def each_message(
    event: SQSEvent, handle: Callable[[dict[str, Any], str], None], fifo: bool = False
) -> Any:
    """`handle(body, message_id)` for each message; answers Lambda's partial batch response.
    A batch whose every message failed raises (Powertools), so Lambda counts an error."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        SqsFifoPartialProcessor,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def one(record: SQSRecord) -> None:
        try:
            handle(json.loads(record.body), record.message_id)
        except Exception:
            logger.exception("queued message failed", extra={"message_id": record.message_id})
            raise

    return process_partial_response(
        event=event.to_dict(),
        record_handler=one,
        processor=(
            SqsFifoPartialProcessor(skip_group_on_error=True)
            if fifo
            else BatchProcessor(event_type=EventType.SQS)
        ),
        context=cast(Any, event.context),  # Lambda's context object, typed loosely by Chalice
    )
