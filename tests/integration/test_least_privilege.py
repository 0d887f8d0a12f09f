"""Least privilege per function, read from the packaged template's roles with moto's IAM
evaluator. (The replay in the integration and e2e fixtures proves the roles suffice.)"""

from __future__ import annotations

from deploy.roles import ROLES
from deploy.wiring import ACCOUNT, REGION, Template
from tests.support.iam_replay import Replay

PUBLIC = ("app", "ws_connect", "ws_message", "ws_disconnect")
PAYOUTS = ("payouts_monthly", "payouts_catch_up", "admin_run_payouts")


def parameter(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/salon/dev/{name}"


def table(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/salon-dev-{name}"


def connection(api_id: str, stage: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/POST/@connections/abc="


def test_every_function_has_a_role_of_its_own(packaged: Template) -> None:
    roles = [f.role for f in packaged.functions().values()]
    # One per entry of deploy/roles.py, and every entry is a function.
    assert len(roles) == len(set(roles)) == len(ROLES)
    assert "DefaultRole" not in packaged.resources


def test_the_public_functions_cannot_read_the_stripe_secret_key(packaged: Template) -> None:
    replay = Replay(packaged)
    functions = packaged.by_handler()
    readers = {
        handler
        for handler, function in functions.items()
        if replay.allows(function, "ssm:GetParameter", parameter("stripe-secret-key"))
    }
    assert readers.isdisjoint(PUBLIC)
    assert set(PAYOUTS) <= readers


def test_the_rest_api_charges_with_the_restricted_stripe_key(packaged: Template) -> None:
    rest = packaged.by_handler()["app"]
    assert rest.environment["SALON_STRIPE_SECRET_KEY_PARAMETER"].endswith("stripe-restricted-key")
    assert Replay(packaged).allows(rest, "ssm:GetParameter", parameter("stripe-restricted-key"))


def test_no_function_may_read_a_parameter_outside_what_it_is_given(packaged: Template) -> None:
    replay = Replay(packaged)
    for function in packaged.functions().values():
        assert not replay.allows(function, "ssm:GetParameter", parameter("anything-else"))
        assert not replay.allows(function, "ssm:GetParameter", parameter("*"))


def test_the_public_functions_cannot_write_payouts_or_enrollments(packaged: Template) -> None:
    replay = Replay(packaged)
    for handler in PUBLIC:
        function = packaged.by_handler()[handler]
        for name in ("payouts", "payout_runs", "enrollments"):
            for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
                assert not replay.allows(function, action, table(name)), (handler, action, name)


def test_websocket_functions_write_no_money_tables(packaged: Template) -> None:
    replay = Replay(packaged)
    for handler in ("ws_connect", "ws_message", "ws_disconnect"):
        function = packaged.by_handler()[handler]
        for name in ("tips", "ledger", "payouts", "stripe_events", "creator_accounts"):
            assert not replay.allows(function, "dynamodb:PutItem", table(name)), (handler, name)


def test_connections_are_managed_only_on_this_apis_own_stage(packaged: Template) -> None:
    replay = Replay(packaged)
    (api_id, stage), *_ = packaged.websocket_stages().items()
    posters = [
        function
        for function in packaged.functions().values()
        if replay.allows(function, "execute-api:ManageConnections", connection(api_id, stage))
    ]
    assert posters, "some function must post to sockets"
    for function in posters:
        assert not replay.allows(
            function, "execute-api:ManageConnections", connection("other-api", stage)
        )
        assert not replay.allows(
            function, "execute-api:ManageConnections", connection(api_id, "ws")
        )


def test_a_payout_run_can_hand_over_through_the_timers_queue_and_continue_there(
    packaged: Template,
) -> None:
    """No suite runs a handover through the handlers, so the replay cannot see it: the run
    queues `payout_continue` and the timers function carries on paying."""
    replay = Replay(packaged)
    functions = packaged.by_handler()
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:salon-dev-timers"
    for handler in PAYOUTS:
        assert replay.allows(functions[handler], "sqs:SendMessage", queue), handler
    timers = functions["timers"]
    assert replay.allows(timers, "ssm:GetParameter", parameter("stripe-secret-key"))
    assert replay.allows(timers, "dynamodb:PutItem", table("payouts"))
    assert replay.allows(timers, "dynamodb:Scan", table("enrollments"))
