"""The one request path: contract timeouts and headers, where transport ends and business begins, and
which lost answers leave a create's outcome unknown."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ima._transport import APP_SOURCE, USER_AGENT, Timeouts, Transport, api_headers, decode_envelope
from ima.errors import AuthError, CreateOutcomeUnknown, ImaTransportError
from tests.ima.contract_server import ContractServer, Reply

CREATE = "/open/v1/tasks/create"


@pytest.fixture
async def server() -> AsyncIterator[ContractServer]:
    srv = await ContractServer().start()
    yield srv
    await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def test_timeouts_are_the_contracts_and_cannot_drift_at_run_time() -> None:
    assert dataclasses.astuple(Timeouts()) == (30.0, 30.0, 30.0, 30.0, 60.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeouts().create = 1.0  # type: ignore[misc]


def test_headers_name_the_client_and_the_skill_source() -> None:
    headers = api_headers("ima_k", language="zh")
    assert headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("IMA-OpenAPI-Client/")
    assert headers["x-app-source"] == APP_SOURCE == "ima_skills" and headers["x_app_language"] == "zh"


def test_an_http_401_without_an_envelope_carries_code_401() -> None:
    with pytest.raises(AuthError) as info:
        decode_envelope(401, b"Unauthorized", create=True)
    assert info.value.code == 401 and info.value.http_status == 401


@pytest.mark.parametrize("status", [199, 300, 304, 400, 499])
def test_an_unreadable_answer_outside_2xx_and_5xx_is_a_plain_transport_error_even_for_create(
    status: int,
) -> None:
    with pytest.raises(ImaTransportError) as info:
        decode_envelope(status, b"?", create=True)
    assert not isinstance(info.value, CreateOutcomeUnknown)


@pytest.mark.parametrize("status", [200, 299, 500, 501, 599])
def test_an_unreadable_2xx_or_5xx_answer_to_create_is_outcome_unknown(status: int) -> None:
    with pytest.raises(CreateOutcomeUnknown):
        decode_envelope(status, b"?", create=True)


async def test_a_lost_answer_is_outcome_unknown_only_for_a_create(server: ContractServer, session) -> None:
    transport = Transport(session)
    server.create_replies = [Reply(drop=True), Reply(drop=True)]
    url = server.base_url + CREATE
    with pytest.raises(ImaTransportError) as plain:
        await transport.request("POST", url, body={}, timeout_s=5)
    assert not isinstance(plain.value, CreateOutcomeUnknown)
    with pytest.raises(CreateOutcomeUnknown):
        await transport.request("POST", url, body={}, timeout_s=5, create=True)


async def test_bodies_are_sent_as_utf_8_not_escaped(server: ContractServer, session) -> None:
    server.create_replies = [Reply({"code": 0, "data": {"id": "t1"}})]
    data = await Transport(session).request(
        "POST", server.base_url + CREATE, body={"prompt": "小狗"}, timeout_s=5
    )
    assert data == {"id": "t1"}
    (seen,) = server.requests(CREATE)
    assert "小狗".encode() in seen.body and json.loads(seen.body) == {"prompt": "小狗"}
