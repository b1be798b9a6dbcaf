"""Pure wire formats: the envelope decision, the create payload, detail parsing, upload signing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ima import (
    AuthError,
    CreateOutcomeUnknown,
    ImaApiError,
    ImaTransportError,
    ImaUsageError,
    InsufficientCredits,
    ModelId,
    ServerError,
    TaskState,
    TaskType,
    decode_envelope,
)
from ima._transport import api_headers
from ima.catalog import parse_products, select_leaf
from ima.params import resolve
from ima.tasks import build_create_payload, check_inputs, parse_task
from ima.upload import describe_file, sign, token_params
from tests.ima.contract_server import load_tree


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# ---- envelope ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 200, "0", "200"])
@pytest.mark.parametrize("status", [200, 201])
def test_success_is_code_0_or_200(code: Any, status: int) -> None:
    assert decode_envelope(status, body({"code": code, "message": "ok", "data": {"id": "x"}})) == {"id": "x"}


@pytest.mark.parametrize("status", [200, 400, 401, 500])
def test_business_errors_are_read_from_the_body_whatever_the_status(status: int) -> None:
    with pytest.raises(InsufficientCredits) as info:
        decode_envelope(status, body({"code": 4008, "message": "Insufficient points"}))
    assert info.value.code == 4008 and info.value.http_status == status
    assert info.value.message == "Insufficient points"


def test_a_mirrored_500_with_a_code_is_a_server_error_not_a_transport_error() -> None:
    with pytest.raises(ServerError):
        decode_envelope(500, body({"code": 500, "message": "internal server error"}))


@pytest.mark.parametrize("raw", [b"<html>Bad Gateway</html>", b"", body({"error": "x"}), body([1, 2])])
def test_no_envelope_is_a_transport_error(raw: bytes) -> None:
    with pytest.raises(ImaTransportError) as info:
        decode_envelope(502, raw)
    assert not isinstance(info.value, ImaApiError | CreateOutcomeUnknown)
    assert info.value.details["http_status"] == 502


@pytest.mark.parametrize("status", [200, 502, 504])
def test_an_unreadable_create_answer_leaves_the_outcome_unknown(status: int) -> None:
    with pytest.raises(CreateOutcomeUnknown):
        decode_envelope(status, b"<html>gateway</html>", create=True)


def test_an_unreadable_4xx_create_answer_is_a_plain_transport_error() -> None:
    with pytest.raises(ImaTransportError) as info:
        decode_envelope(404, b"not found", create=True)
    assert not isinstance(info.value, CreateOutcomeUnknown)


def test_http_401_without_envelope_is_still_an_auth_error() -> None:
    with pytest.raises(AuthError):
        decode_envelope(401, b"Unauthorized")


def test_headers_keep_the_underscored_language_name() -> None:
    headers = api_headers("ima_k", language="zh", user_agent="UA/1")
    assert headers == {
        "Authorization": "Bearer ima_k",
        "Content-Type": "application/json",
        "User-Agent": "UA/1",
        "x-app-source": "ima_skills",
        "x_app_language": "zh",
    }


# ---- create payload ----------------------------------------------------------------------------


def test_create_payload_is_exact() -> None:
    product = select_leaf(parse_products(load_tree()), ModelId.PRO)
    resolved = resolve(product, TaskType.FIRST_LAST_FRAME_TO_VIDEO, {"duration": 5, "aspect_ratio": "9:16"})
    urls = ["https://cdn.test/a.jpg", "https://cdn.test/b.png"]
    assert build_create_payload(resolved, "a cat turns", urls) == {
        "task_type": "first_last_frame_to_video",
        "enable_multi_model": False,
        "src_img_url": urls,
        "parameters": [
            {
                "attribute_id": 7103,
                "model_id": "ima-pro",
                "model_name": "IMA Video Pro",
                "model_version": "ima-pro-v7",
                "app": "ima",
                "platform": "web",
                "category": "first_last_frame_to_video",
                "credit": 90,
                "parameters": {
                    "duration": "5",
                    "resolution": "1080P",
                    "aspect_ratio": "9:16",
                    "audio": True,
                    "prompt": "a cat turns",
                    "n": 1,
                    "input_images": urls,
                    "cast": {"points": 90, "attribute_id": 7103},
                },
            }
        ],
    }


def test_text_to_video_sends_an_empty_src_img_url() -> None:
    product = select_leaf(parse_products(load_tree()), ModelId.FAST)
    payload = build_create_payload(resolve(product, TaskType.TEXT_TO_VIDEO, {}), "sea", [])
    assert payload["src_img_url"] == [] and payload["parameters"][0]["parameters"]["input_images"] == []


@pytest.mark.parametrize(
    ("task_type", "prompt", "count", "reason"),
    [
        (TaskType.TEXT_TO_VIDEO, "", 0, "prompt_required"),
        (TaskType.TEXT_TO_VIDEO, "x", 1, "no_images_for_text"),
        (TaskType.IMAGE_TO_VIDEO, "x", 0, "image_required"),
        (TaskType.FIRST_LAST_FRAME_TO_VIDEO, "x", 1, "two_frames_required"),
        (TaskType.FIRST_LAST_FRAME_TO_VIDEO, "x", 3, "two_frames_required"),
        (TaskType.REFERENCE_IMAGE_TO_VIDEO, "x", 10, "too_many_images"),
    ],
)
def test_inputs_are_checked_per_task_type(task_type: TaskType, prompt: str, count: int, reason: str) -> None:
    with pytest.raises(ImaUsageError) as info:
        check_inputs(task_type, prompt, ["https://x"] * count)
    assert info.value.details["reason"] == reason


def test_good_inputs_pass() -> None:
    check_inputs(TaskType.IMAGE_TO_VIDEO, "", ["https://x"])
    check_inputs(TaskType.REFERENCE_IMAGE_TO_VIDEO, "x", ["https://x"] * 9)


# ---- task detail -------------------------------------------------------------------------------


def media(**kw: Any) -> dict[str, Any]:
    return {"status": "processing", **kw}


@pytest.mark.parametrize("rs", [None, "", 0, "0"])
def test_null_empty_or_zero_status_is_processing(rs: Any) -> None:
    task = parse_task({"id": "t", "medias": [media(resource_status=rs, url="https://x")]}, "t")
    assert task.state is TaskState.PROCESSING and task.medias[0].resource_status == 0


def test_missing_or_null_medias_is_processing() -> None:
    assert parse_task({"id": "t", "medias": None}, "t").state is TaskState.PROCESSING
    assert parse_task(None, "t").state is TaskState.PROCESSING and parse_task(None, "t").id == "t"


@pytest.mark.parametrize("cover_key", ["cover", "cover_url"])
def test_success_needs_status_1_and_a_url_and_reads_either_cover(cover_key: str) -> None:
    raw = media(
        resource_status="1", status="success", url="https://cdn/v.mp4", **{cover_key: "https://cdn/c.jpg"}
    )
    task = parse_task({"id": "t", "medias": [raw]}, "t")
    assert task.state is TaskState.SUCCEEDED
    assert (task.url, task.cover_url) == ("https://cdn/v.mp4", "https://cdn/c.jpg")


def test_status_1_without_a_url_keeps_polling_and_watermark_url_counts() -> None:
    assert parse_task({"medias": [media(resource_status=1)]}, "t").state is TaskState.PROCESSING
    task = parse_task({"medias": [media(resource_status=1, watermark_url="https://w")]}, "t")
    assert task.state is TaskState.SUCCEEDED and task.url == "https://w"


def test_all_medias_must_be_ready() -> None:
    raw = [media(resource_status=1, url="https://a"), media(resource_status=None)]
    assert parse_task({"medias": raw}, "t").state is TaskState.PROCESSING


@pytest.mark.parametrize(
    ("raw", "state", "error"),
    [
        (media(resource_status=2, error_msg="nsfw"), TaskState.FAILED, "nsfw"),
        (media(resource_status=2, remark="quota"), TaskState.FAILED, "quota"),
        (media(resource_status=2), TaskState.FAILED, "unknown"),
        (media(resource_status=1, status=" FAILED ", url="https://x"), TaskState.FAILED, "unknown"),
        (media(resource_status=3), TaskState.DELETED, "Task was deleted"),
    ],
)
def test_failure_states(raw: dict[str, Any], state: TaskState, error: str) -> None:
    task = parse_task({"medias": [raw]}, "t")
    assert (task.state, task.error) == (state, error)


# ---- upload signing ----------------------------------------------------------------------------


def test_sign_is_uppercase_sha1_of_the_pipe_joined_string() -> None:
    expected = hashlib.sha1(b"webAgent|32jdskjdk320eew|1700000000|abc").hexdigest().upper()
    assert sign("1700000000", "abc") == expected


def test_token_params_are_the_eleven_of_the_contract() -> None:
    params = token_params("ima_k", content_type="image/png", suffix="png", timestamp="17", nonce="n" * 21)
    assert params == {
        "appUid": "ima_k",
        "appId": "webAgent",
        "appKey": "32jdskjdk320eew",
        "cmimToken": "ima_k",
        "sign": sign("17", "n" * 21),
        "timestamp": "17",
        "nonce": "n" * 21,
        "fService": "privite",
        "fType": "picture",
        "fSuffix": "png",
        "fContentType": "image/png",
    }


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("Photo.JPG", None, ("image/jpeg", "jpg")),
        ("frame.png", None, ("image/png", "png")),
        ("noext", None, ("image/jpeg", "jpeg")),
        ("noext", "image/webp", ("image/webp", "webp")),
        ("clip.mp4", None, ("video/mp4", "mp4")),
        ("x.bin", "image/png; charset=binary", ("image/png", "bin")),
    ],
)
def test_describe_file(filename: str, content_type: str | None, expected: tuple[str, str]) -> None:
    assert describe_file(filename, content_type) == expected
