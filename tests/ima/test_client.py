"""ImaClient over real HTTP against the contract server: headers, envelopes, payloads, upload, reflection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ima import (
    AuthError,
    CreateOutcomeUnknown,
    CreditMismatch,
    ImaApiError,
    ImaClient,
    ImaTransportError,
    ImaUsageError,
    InsufficientCredits,
    ModelId,
    ModelNotFound,
    ServerError,
    SubscriptionRequired,
    TaskState,
    TaskType,
    Timeouts,
    UploadError,
)
from ima._transport import Transport
from ima.models import API_KEY_URL, SUBSCRIPTION_URL
from tests.ima.contract_server import API_KEY, ContractServer, Reply
from tests.ima.test_catalog import rule, tags

PRODUCTS = "/open/v1/product/list"
CREATE = "/open/v1/tasks/create"
DETAIL = "/open/v1/tasks/detail"
TOKEN = "/uploads/api/rest/oss/getuploadtoken"


@pytest.fixture
async def server() -> AsyncIterator[ContractServer]:
    srv = await ContractServer().start()
    yield srv
    await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_client(server: ContractServer, session: aiohttp.ClientSession, **kw: Any) -> ImaClient:
    kw.setdefault("base_url", server.base_url)
    kw.setdefault("upload_base_url", server.upload_base_url)
    return ImaClient(session, kw.pop("api_key", API_KEY), **kw)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inner(seen_create: Any) -> dict[str, Any]:
    return seen_create.json()["parameters"][0]["parameters"]


# ---- headers and envelopes ---------------------------------------------------------------------


async def test_product_list_sends_the_contract_headers_and_query(server, session) -> None:
    client = make_client(server, session, language="zh", user_agent="imabot-test/1")
    found = await client.fetch_products(TaskType.IMAGE_TO_VIDEO)
    assert [p.id for p in found] == ["ima-pro-2025", "ima-pro-fast-v3", "ima-pro-v7"]
    (seen,) = server.requests(PRODUCTS)
    assert seen.query == {"app": "ima", "platform": "web", "category": "image_to_video"}
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert seen.headers["Content-Type"] == "application/json"  # also on GET
    assert seen.headers["User-Agent"] == "imabot-test/1"
    assert seen.headers["x-app-source"] == "ima_skills"
    assert seen.headers["x_app_language"] == "zh"


async def test_create_and_detail_always_send_language_en(server, session) -> None:
    client = make_client(server, session, language="zh")
    created = await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "waves")
    server.detail_replies[created.task_id] = [
        Reply({"code": 0, "data": {"id": created.task_id, "medias": []}})
    ]
    await client.fetch_task(created.task_id)
    for path in (CREATE, DETAIL):
        (seen,) = server.requests(path)
        assert seen.headers["x_app_language"] == "en"
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert server.requests(DETAIL)[0].json() == {"task_id": "task_1"}


@pytest.mark.parametrize("mirror", [False, True])
async def test_code_200_counts_as_success(server, session, mirror: bool) -> None:
    server.success_code, server.mirror_status = 200, mirror
    created = await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert created.task_id == "task_1" and created.attempts == 1


@pytest.mark.parametrize("mirror", [False, True])
async def test_a_wrong_key_is_an_auth_error_with_the_key_page(server, session, mirror: bool) -> None:
    server.mirror_status = mirror
    with pytest.raises(AuthError) as info:
        await make_client(server, session, api_key="ima_wrong").fetch_products(TaskType.TEXT_TO_VIDEO)
    assert info.value.http_status == (401 if mirror else 200)
    assert API_KEY_URL in info.value.links and API_KEY_URL in info.value.hint
    assert "ima_wrong" not in str(info.value)


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize(
    ("code", "error", "link"),
    [
        (401, AuthError, API_KEY_URL),
        (4008, InsufficientCredits, SUBSCRIPTION_URL),
        (4014, SubscriptionRequired, SUBSCRIPTION_URL),
        (6006, CreditMismatch, None),
    ],
)
async def test_typed_create_errors_are_not_retried(server, session, mirror, code, error, link) -> None:
    server.mirror_status = mirror
    server.create_replies = [Reply({"code": code, "message": f"refused {code}"})]
    with pytest.raises(error) as info:
        await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert len(server.requests(CREATE)) == 1
    assert info.value.code == code and info.value.message == f"refused {code}" and info.value.hint
    assert info.value.details["attempts"] == 1
    if link:
        assert link in info.value.links
    expected_status = (code if code < 600 else 400) if mirror else 200
    assert info.value.http_status == expected_status


async def test_non_json_502_is_a_transport_error(server, session) -> None:
    server.detail_replies["t9"] = [Reply(raw=b"<html>502 Bad Gateway</html>", status=502)]
    with pytest.raises(ImaTransportError) as info:
        await make_client(server, session).fetch_task("t9")
    assert not isinstance(info.value, ImaApiError)


async def test_unknown_task_is_a_business_error(server, session) -> None:
    with pytest.raises(ImaApiError) as info:
        await make_client(server, session).fetch_task("nope")
    assert info.value.code == 404


# ---- create payload and the unknown outcome ----------------------------------------------------


async def test_create_payload_is_exact_on_the_wire(server, session) -> None:
    client = make_client(server, session)
    attempts: list[tuple[int, int]] = []

    async def on_attempt(n: int, resolved: Any) -> None:
        attempts.append((n, len(server.requests(CREATE))))  # called before the bytes leave

    urls = ["https://cdn.test/first.jpg"]
    created = await client.create_task(
        TaskType.IMAGE_TO_VIDEO,
        ModelId.PRO,
        "a dog runs",
        input_urls=urls,
        overrides={"resolution": "720p", "duration": 5},
        on_attempt=on_attempt,
    )
    assert attempts == [(1, 0)]
    assert created.task_id == "task_1" and created.resolved.rule.attribute_id == 7101
    (seen,) = server.requests(CREATE)
    assert seen.json() == {
        "task_type": "image_to_video",
        "enable_multi_model": False,
        "src_img_url": urls,
        "parameters": [
            {
                "attribute_id": 7101,
                "model_id": "ima-pro",
                "model_name": "IMA Video Pro",
                "model_version": "ima-pro-v7",
                "app": "ima",
                "platform": "web",
                "category": "image_to_video",
                "credit": 40,
                "parameters": {
                    "duration": "5",
                    "resolution": "720P",
                    "aspect_ratio": "16:9",
                    "audio": True,
                    "prompt": "a dog runs",
                    "n": 1,
                    "input_images": urls,
                    "cast": {"points": 40, "attribute_id": 7101},
                },
            }
        ],
    }


async def test_dropped_connection_during_create_is_outcome_unknown_and_not_resent(server, session) -> None:
    server.create_replies = [Reply(drop=True)]
    calls: list[int] = []

    async def on_attempt(n: int, resolved: Any) -> None:
        calls.append(n)

    with pytest.raises(CreateOutcomeUnknown) as info:
        await make_client(server, session).create_task(
            TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky", on_attempt=on_attempt
        )
    assert calls == [1] and len(server.requests(CREATE)) == 1
    assert info.value.links and "charged twice" in info.value.hint


async def test_create_timeout_is_outcome_unknown(server, session) -> None:
    release = asyncio.Event()
    server.create_replies = [Reply({"code": 0, "data": {"id": "late"}}, hold=release)]
    client = make_client(server, session, timeouts=Timeouts(create=0.2))
    try:
        with pytest.raises(CreateOutcomeUnknown):
            await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    finally:
        release.set()
    assert len(server.requests(CREATE)) == 1


@pytest.mark.parametrize(
    "reply", [Reply(raw=b"<html>504</html>", status=504), Reply({"code": 0, "data": {}})]
)
async def test_unreadable_or_id_less_create_answer_is_outcome_unknown(server, session, reply: Reply) -> None:
    server.create_replies = [reply]
    with pytest.raises(CreateOutcomeUnknown):
        await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert len(server.requests(CREATE)) == 1


async def test_refused_connection_is_a_plain_transport_error_even_for_create(session) -> None:
    transport = Transport(session)
    with pytest.raises(ImaTransportError) as info:
        await transport.request(
            "POST", f"http://127.0.0.1:{dead_port()}/x", body={}, timeout_s=5, create=True
        )
    assert not isinstance(info.value, CreateOutcomeUnknown)


async def test_bad_inputs_fail_before_any_request(server, session) -> None:
    with pytest.raises(ImaUsageError):
        await make_client(server, session).create_task(
            TaskType.FIRST_LAST_FRAME_TO_VIDEO, ModelId.PRO, "x", input_urls=["https://a"]
        )
    assert server.seen == []


# ---- reflection over the wire ------------------------------------------------------------------


async def test_500_twice_degrades_resolution_then_duration_from_the_defaults(server, session) -> None:
    server.mirror_status = True
    server.create_replies = [Reply({"code": 500, "message": "internal server error"})] * 2
    calls: list[int] = []

    async def on_attempt(n: int, resolved: Any) -> None:
        calls.append(n)

    created = await make_client(server, session).create_task(
        TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky", on_attempt=on_attempt
    )
    assert created.attempts == 3 and calls == [1, 2, 3]
    sent = [
        (inner(s)["resolution"], inner(s)["duration"], s.json()["parameters"][0]["attribute_id"])
        for s in server.requests(CREATE)
    ]
    assert sent == [("1080P", "10", 7104), ("720P", "10", 7102), ("720P", "5", 7101)]
    assert [(n.key, n.params["field"]) for n in created.notes] == [
        ("reflection_degraded", "resolution"),
        ("reflection_degraded", "duration"),
    ]


async def test_500_three_times_gives_up_with_the_server_error(server, session) -> None:
    server.create_replies = [Reply({"code": 500, "message": "boom"})] * 3
    with pytest.raises(ServerError) as info:
        await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert len(server.requests(CREATE)) == 3 and info.value.details["attempts"] == 3
    assert len(info.value.details["notes"]) == 2


def tree_with(*leaves: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": "g", "type": "2", "name": "G", "model_id": "", "children": list(leaves)}]


def raw_leaf(rules: list[dict[str, Any]], form: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "pro-x",
        "type": "3",
        "name": "Pro X",
        "model_id": "ima-pro",
        "credit_rules": rules,
        "form_config": form,
    }


async def test_6009_completes_missing_parameters_from_the_cheapest_rule(server, session) -> None:
    server.tree = tree_with(
        raw_leaf(
            [
                rule(1, 30, duration="5", resolution="720p"),
                rule(2, 10, duration="5", resolution="480p", mode="std"),
            ],
            [tags("duration", 5, 5), tags("resolution", "720p", "480p", "720p")],
        )
    )
    server.create_replies = [Reply({"code": 6009, "message": "no matching rule"})]
    created = await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    first, second = server.requests(CREATE)
    assert "mode" not in inner(first) and inner(second)["mode"] == "std"
    # Nothing was said, so every condition of the cheapest rule counts as missing (contract §8.3).
    assert (inner(second)["duration"], inner(second)["resolution"]) == ("5", "480p")
    assert [(n.key, n.params) for n in created.notes] == [
        (
            "reflection_completed",
            {
                "fields": ["duration", "mode", "resolution"],
                "values": {"duration": "5", "resolution": "480p", "mode": "std"},
            },
        )
    ]


async def test_6010_reselects_the_rule_and_keeps_price_fields_consistent(server, session) -> None:
    server.tree = tree_with(
        raw_leaf([rule(11, 5, duration="5"), rule(12, 6, duration="5")], [tags("duration", 5, 5)])
    )
    server.create_replies = [Reply({"code": 6010, "message": "Attribute ID does not match"})]
    created = await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    ids = [
        (s.json()["parameters"][0]["attribute_id"], s.json()["parameters"][0]["credit"], inner(s)["cast"])
        for s in server.requests(CREATE)
    ]
    assert ids == [(11, 5, {"points": 5, "attribute_id": 11}), (12, 6, {"points": 6, "attribute_id": 12})]
    assert created.notes[-1].key == "reflection_reselected" and created.resolved.rule.attribute_id == 12


async def test_a_price_error_forgets_the_cached_catalog(server, session) -> None:
    client = make_client(server, session)
    server.create_replies = [Reply({"code": 6006, "message": "credit mismatch"})]
    with pytest.raises(CreditMismatch):
        await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert len(server.requests(PRODUCTS)) == 2


# ---- catalog cache -----------------------------------------------------------------------------


async def test_catalog_is_cached_per_task_type_for_the_ttl(server, session) -> None:
    now = [0.0]
    client = make_client(server, session, catalog_ttl=600.0, clock=lambda: now[0])
    await client.fetch_products(TaskType.TEXT_TO_VIDEO)
    now[0] = 599.0
    await client.fetch_products(TaskType.TEXT_TO_VIDEO)
    assert len(server.requests(PRODUCTS)) == 1
    await client.fetch_products(TaskType.IMAGE_TO_VIDEO)
    now[0] = 601.0
    await client.fetch_products(TaskType.TEXT_TO_VIDEO)
    await client.fetch_products(TaskType.TEXT_TO_VIDEO, refresh=True)
    assert [s.query["category"] for s in server.requests(PRODUCTS)] == [
        "text_to_video",
        "image_to_video",
        "text_to_video",
        "text_to_video",
    ]


async def test_fetch_product_takes_the_last_leaf_and_refreshes_once_on_a_miss(server, session) -> None:
    client = make_client(server, session)
    with pytest.raises(ModelNotFound):  # a fresh list is not fetched twice
        await client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.PRO, version="ima-pro-v8")
    assert len(server.requests(PRODUCTS)) == 1
    assert (await client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.PRO)).id == "ima-pro-v7"
    with pytest.raises(ModelNotFound):  # a cached list is refreshed once before giving up
        await client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.PRO, version="ima-pro-v8")
    assert len(server.requests(PRODUCTS)) == 2


# ---- upload ------------------------------------------------------------------------------------


async def test_prepare_inputs_uploads_local_files_and_passes_urls_through(
    server, session, tmp_path: Path
) -> None:
    png = tmp_path / "frame.png"
    png.write_bytes(b"\x89PNG fake")
    urls = await make_client(server, session).prepare_inputs(["https://cdn.test/a.jpg", png, f"file://{png}"])
    assert urls == [
        "https://cdn.test/a.jpg",
        "https://cdn.example.test/obj1.png",
        "https://cdn.example.test/obj2.png",
    ]
    token = server.requests(TOKEN)[0]
    assert "Authorization" not in token.headers
    assert token.query["fType"] == "picture" and token.query["fSuffix"] == "png"
    assert token.query["fContentType"] == "image/png" and token.query["fService"] == "privite"
    assert len(token.query["nonce"]) == 21 and token.query["cmimToken"] == API_KEY
    assert server.objects["obj1.png"] == ("image/png", b"\x89PNG fake")  # PUT with the same Content-Type


@pytest.mark.parametrize("content", [b"just some notes", b"", b"RIFF0000WAVEfmt ", b"%PDF-1.7"])
async def test_a_local_file_that_is_not_an_image_is_refused_before_any_upload(
    server, session, tmp_path: Path, content: bytes
) -> None:
    good, bad = tmp_path / "a.png", tmp_path / "notes.png"
    good.write_bytes(b"\x89PNG\r\n\x1a\n...")
    bad.write_bytes(content)
    with pytest.raises(ImaUsageError) as info:
        await make_client(server, session).prepare_inputs([good, bad])
    assert info.value.details["reason"] == "input_not_image" and "notes.png" in info.value.message
    assert server.seen == []  # not even the good file went up


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a", "image/gif"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"BM\0\0", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"GIF87a", "image/gif"),
    ],
)
async def test_image_bytes_upload_with_the_type_they_announce(
    server, session, tmp_path: Path, content: bytes, ctype: str
) -> None:
    path = tmp_path / "picture"
    path.write_bytes(content)
    await make_client(server, session).prepare_inputs([path])
    assert server.requests(TOKEN)[0].query["fContentType"] == ctype


async def test_upload_with_an_explicit_content_type(server, session) -> None:
    url = await make_client(server, session).upload_file(b"jpeg", filename="photo", content_type="image/jpeg")
    assert url.endswith(".jpeg") and server.objects["obj1.jpeg"] == ("image/jpeg", b"jpeg")


async def test_missing_local_file_is_a_usage_error(server, session, tmp_path: Path) -> None:
    with pytest.raises(ImaUsageError) as info:
        await make_client(server, session).prepare_inputs([tmp_path / "gone.png"])
    assert info.value.details["reason"] == "input_not_found" and server.seen == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply({"code": 500, "message": "oss down"}), UploadError),
        (Reply({"code": 401, "message": "bad token"}), AuthError),
        (Reply({"code": 0, "data": {"ful": "", "fdl": "https://x"}}), UploadError),
        (Reply(raw=b"<html>", status=502), UploadError),
    ],
)
async def test_upload_token_failures(server, session, reply: Reply, error: type[Exception]) -> None:
    server.token_replies = [reply]
    with pytest.raises(error) as info:
        await make_client(server, session).upload_file(b"x", filename="a.png")
    assert API_KEY not in str(info.value)


async def test_presigned_put_rejection_is_an_upload_error(server, session) -> None:
    ful = f"{server.base_url}/oss/unknown.png?Expires=1999999999&OSSAccessKeyId=k&Signature=ab%2Bc%2Fd%3D"
    server.token_replies = [Reply({"code": 0, "data": {"ful": ful, "fdl": "https://cdn/x"}})]
    with pytest.raises(UploadError) as info:
        await make_client(server, session).upload_file(b"x", filename="a.png")
    assert info.value.code == 403


async def test_unreachable_upload_host_never_shows_the_key(server, session) -> None:
    client = make_client(server, session, upload_base_url=f"http://127.0.0.1:{dead_port()}")
    with pytest.raises(UploadError) as info:
        await client.upload_file(b"x", filename="a.png")
    assert API_KEY not in str(info.value) and info.value.__cause__ is None


# ---- watch over the wire -----------------------------------------------------------------------


async def test_watch_reads_null_and_empty_status_then_cover_only_success(server, session) -> None:
    def detail(**media: Any) -> Reply:
        return Reply({"code": 200, "data": {"id": "t1", "medias": [media]}})

    server.detail_replies["t1"] = [
        detail(resource_status=None, status="pending"),
        Reply(raw=b"<html>503</html>", status=503),
        detail(resource_status="", status="processing"),
        detail(resource_status=1, status="success", url="https://cdn/v.mp4", cover="https://cdn/c.jpg"),
    ]
    now = [0.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    snaps = [s async for s in make_client(server, session).watch("t1", clock=lambda: now[0], sleep=sleep)]
    assert [s.task.state for s in snaps] == [TaskState.PROCESSING, TaskState.PROCESSING, TaskState.SUCCEEDED]
    assert sleeps == [8.0, 2.0, 8.0]
    assert (snaps[-1].task.url, snaps[-1].task.cover_url) == ("https://cdn/v.mp4", "https://cdn/c.jpg")
    assert len(server.requests(DETAIL)) == 4


async def test_the_users_adjustments_stay_noted_across_reflection(server, session) -> None:
    server.create_replies = [Reply({"code": 500, "message": "busy"})]
    created = await make_client(server, session).create_task(
        TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky", overrides={"resolution": "4K"}
    )
    assert [
        (n.key, n.params.get("requested", n.params.get("from")), n.params.get("used", n.params.get("to")))
        for n in created.notes
    ] == [
        ("value_not_offered", "4K", "1080P"),
        ("reflection_degraded", "1080P", "720P"),
    ]


async def test_outcome_unknown_on_a_later_attempt_says_which(server, session) -> None:
    server.create_replies = [Reply({"code": 500, "message": "busy"}), Reply(drop=True)]
    with pytest.raises(CreateOutcomeUnknown) as info:
        await make_client(server, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "sky")
    assert info.value.details["attempts"] == 2 and len(server.requests(CREATE)) == 2
