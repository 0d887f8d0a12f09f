"""The packaged template of a stage on IVS (prod) grants the IVS calls the media plane's
adapter really makes, to exactly the functions that run rooms, on this account's stages only:
the set of calls is recorded from the adapter (one room's lifetime against the Stubber), not
written down twice."""

from __future__ import annotations

import botocore.session
import pytest

from deploy import roles
from deploy.wiring import ACCOUNT, REGION, Template
from local.aws_calls import authorizations
from tests.support.iam_replay import Replay
from tests.support.ivs_stubs import STAGE_ARN, one_room_lifetime, stubbed_ivs

# Start rooms and move speakers (message), drop a member for good (disconnect), end rooms and
# expire members (timers).
# "app": deleting an account takes the member out of their rooms, and their media with them.
RUNS_ROOMS = {"app", "ws_message", "ws_disconnect", "timers"}
NEW_STAGE = f"arn:aws:ivs:{REGION}:{ACCOUNT}:stage/*"
OTHER_ACCOUNTS_STAGE = f"arn:aws:ivs:{REGION}:999999999999:stage/AbCdEf012345"


@pytest.fixture(scope="module")
def adapter_calls() -> set[tuple[str, str]]:
    """(IAM action, resource) of every call the adapter makes in one room's lifetime."""
    ivs = stubbed_ivs()
    one_room_lifetime(ivs)
    return {
        pair
        for operation, params in ivs.calls
        for pair in authorizations("ivs-realtime", "ivs", operation, params, REGION, "")
    }


def every_ivs_action() -> set[str]:
    """Every action of the `ivs` IAM prefix botocore knows (low-latency and real-time)."""
    session = botocore.session.get_session()
    return {
        f"ivs:{name}"
        for service in ("ivs", "ivs-realtime")
        for name in session.get_service_model(service).operation_names
    }


def granted(replay: Replay, template: Template, handler: str) -> set[str]:
    function = template.by_handler()[handler]
    return {
        action
        for action in every_ivs_action()
        for resource in (STAGE_ARN, NEW_STAGE, "*")
        if replay.allows(function, action, resource)
    }


def test_the_adapter_calls_are_the_ones_roles_declares(adapter_calls: set[tuple[str, str]]) -> None:
    assert {action for action, _ in adapter_calls} == set(roles.IVS_STAGES)


def test_the_functions_that_run_rooms_may_make_every_call_the_adapter_makes(
    packaged_prod: Template, adapter_calls: set[tuple[str, str]]
) -> None:
    replay = Replay(packaged_prod)
    denied = [
        (handler, action, resource)
        for handler in sorted(RUNS_ROOMS)
        for action, resource in sorted(adapter_calls)
        if not replay.allows(packaged_prod.by_handler()[handler], action, resource)
    ]
    assert denied == []


def test_no_function_may_make_an_ivs_call_the_adapter_does_not(
    packaged_prod: Template, adapter_calls: set[tuple[str, str]]
) -> None:
    replay = Replay(packaged_prod)
    needed = {action for action, _ in adapter_calls}
    functions = packaged_prod.by_handler()
    by_function = {handler: granted(replay, packaged_prod, handler) for handler in functions}
    assert by_function == {
        handler: (needed if handler in RUNS_ROOMS else set()) for handler in by_function
    }


def test_stages_are_granted_in_this_account_only_and_never_on_every_resource(
    packaged_prod: Template,
) -> None:
    replay = Replay(packaged_prod)
    for handler in sorted(RUNS_ROOMS):
        function = packaged_prod.by_handler()[handler]
        for action in roles.IVS_STAGES:
            assert not replay.allows(function, action, OTHER_ACCOUNTS_STAGE), (handler, action)
            assert not replay.allows(function, action, "*"), (handler, action)


def test_a_stage_on_janus_gets_no_ivs_call_and_a_stage_on_ivs_no_janus_secret(
    packaged: Template, packaged_prod: Template
) -> None:
    """Each stage holds only what its media plane needs (SALON_MEDIA_PLANE)."""
    dev_replay = Replay(packaged)
    for handler in packaged.by_handler():
        assert granted(dev_replay, packaged, handler) == set(), handler
    for template, present in ((packaged, True), (packaged_prod, False)):
        for handler in sorted(RUNS_ROOMS):
            variables = template.by_handler()[handler].environment
            names = {"SALON_JANUS_API_SECRET_PARAMETER", "SALON_JANUS_ADMIN_SECRET_PARAMETER"}
            assert (names <= set(variables)) is present, (handler, sorted(variables))
