"""Operator functions: Lambdas invoked from the AWS console with a JSON test event."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from chalice.app import Chalice

from chalicelib.domain.errors import SalonError, ValidationError
from chalicelib.edge.errors import error_payload, internal_payload
from chalicelib.edge.validation import Field, validate

logger = logging.getLogger("salon.admin")

# (the validated event, the Lambda context) -> the result
AdminHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def admin_function(app: Chalice) -> Callable[[Sequence[Field]], Callable[[AdminHandler], Any]]:
    """`app.lambda_function` that validates the event and answers `{"ok": ..., ...}`.

    Errors come back as a result, not an exception, so the console shows a readable answer.
    """

    def declare(fields: Sequence[Field]) -> Callable[[AdminHandler], Any]:
        def register(handler: AdminHandler) -> Any:
            @functools.wraps(handler)
            def run(event: Any, context: Any) -> dict[str, Any]:
                try:
                    if not isinstance(event, dict):
                        raise ValidationError("The event must be a JSON object.")
                    result = handler(validate(event, fields), context)
                except SalonError as error:
                    logger.warning("admin action refused", extra={"code": error.code})
                    return {"ok": False, "error": error_payload(error)}
                except Exception:
                    logger.exception("admin action failed")
                    return {"ok": False, "error": internal_payload()}
                logger.info("admin action done", extra={"action": handler.__name__})
                return {"ok": True, "result": result}

            return app.lambda_function(name=handler.__name__)(run)

        return register

    return declare
