"""ima.emulator over real HTTP: auth, product trees, the create checks, detail, modes and variants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ima.emulator import Emulator, EmulatorConfig, Variants

KEY = "ima_test_key_abcdef123456"
POOR = "ima_poor_key_0000000000"
OTHER = "ima_other_key_99999999999"
# Attribute ids of the bundled fixture: category base + 100 (ima-pro), + 200 (ima-pro-v0), + 300 (fast).
T2V_PRO_720_5 = (1104, 30)
T2V_PRO_1080_10 = (1108, 120)
I2V_PRO_720_5 = (2104, 30)
FLF_PRO_720_5 = (3104, 30)


class ManualClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    config = EmulatorConfig(api_keys={KEY: 1000, POOR: 10, OTHER: 1000}, speed=10.0)
    async with Emulator(config, clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def payload(
    task_type: str = "text_to_video",
    rule: tuple[int, int] = T2V_PRO_720_5,
    *,
    model_id: str = "ima-pro",
    version: str = "ima-pro",
    images: tuple[str, ...] = (),
    n: int = 1,
    prompt: str = "a red fox in snow",
    **params: Any,
) -> dict[str, Any]:
    attribute_id, credit = rule
    inner = {"duration": 5, "resolution": "720p", "aspect_ratio": "16:9", "audio": True, **params}
    inner |= {"prompt": prompt, "n": n, "input_images": list(images)}
    inner["cast"] = {"points": credit, "attribute_id": attribute_id}
    outer = {
        "attribute_id": attribute_id,
        "model_id": model_id,
        "model_name": "IMA Video Pro",
        "model_version": version,
        "app": "ima",
        "platform": "web",
        "category": task_type,
        "credit": credit,
        "parameters": inner,
    }
    return {
        "task_type": task_type,
        "enable_multi_model": False,
        "src_img_url": list(images),
        "parameters": [outer],
    }


async def call(
    http: aiohttp.ClientSession, method: str, url: str, *, key: str | None = KEY, **kw: Any
) -> tuple[int, Any]:
    headers = {"x-app-source": "ima_skills", "x_app_language": "en"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with http.request(method, url, headers=headers, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, body


async def products(
    http: aiohttp.ClientSession, emu: Emulator, category: str = "text_to_video", **q: str
) -> Any:
    status, body = await call(
        http,
        "GET",
        f"{emu.base_url}/open/v1/product/list",
        params={"app": "ima", "platform": "web", "category": category, **q},
    )
    assert status == 200 and body["code"] == 0
    return body["data"]


async def create(http: aiohttp.ClientSession, emu: Emulator, body: Any, key: str = KEY) -> tuple[int, Any]:
    return await call(http, "POST", f"{emu.base_url}/open/v1/tasks/create", json=body, key=key)


async def detail(http: aiohttp.ClientSession, emu: Emulator, task_id: str, key: str = KEY) -> Any:
    status, body = await call(
        http, "POST", f"{emu.base_url}/open/v1/tasks/detail", json={"task_id": task_id}, key=key
    )
    assert status == 200
    return body


def leaves(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        if node["type"] == "3":
            out.append(node)
        out.extend(leaves(node.get("children") or []))
    return out


def all_types(nodes: list[dict[str, Any]]) -> list[Any]:
    return [t for n in nodes for t in (n["type"], *all_types(n.get("children") or []))]


ENDPOINTS = [
    ("GET", "/open/v1/product/list?app=ima&platform=web&category=text_to_video", None),
    ("POST", "/open/v1/tasks/create", payload()),
    ("POST", "/open/v1/tasks/detail", {"task_id": "task_x"}),
    ("POST", "/open/v1/assets/verify", {"url": "https://example.invalid/a.jpg"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("auth", [None, "Bearer ima_unknown_key_1234", f"Basic {KEY}", "Bearer "])
async def test_every_api_endpoint_needs_a_known_bearer_key(emu, http, method, path, body, auth) -> None:
    headers = {"Authorization": auth} if auth else {}
    async with http.request(method, emu.base_url + path, json=body, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["code"] == 401
    assert emu.tasks == {}


async def test_tree_types_are_strings_with_two_pro_leaves_oldest_first(emu, http) -> None:
    for category in (
        "text_to_video",
        "image_to_video",
        "first_last_frame_to_video",
        "reference_image_to_video",
    ):
        tree = await products(http, emu, category)
        assert set(all_types(tree)) == {"2", "3"}
        found = leaves(tree)
        assert [leaf["id"] for leaf in found if leaf["model_id"] == "ima-pro"] == ["ima-pro-v0", "ima-pro"]
        assert any(leaf["model_id"] == "ima-pro-fast" for leaf in found)
        for leaf in found:
            assert leaf["credit_rules"] and all(r["attribute_id"] for r in leaf["credit_rules"])
    tree = await products(http, emu)
    all_leaves = leaves(tree)
    assert any(leaf["model_id"].startswith("kling") for leaf in all_leaves)
    assert any(r["attributes"] == {"default": "enabled"} for leaf in all_leaves for r in leaf["credit_rules"])
    assert any(f.get("is_ui_virtual") for leaf in all_leaves for f in leaf["form_config"])
    pro = next(leaf for leaf in all_leaves if leaf["id"] == "ima-pro")
    fields = {f["field"]: f for f in pro["form_config"]}
    assert set(fields) == {"duration", "resolution", "aspect_ratio", "audio"}
    assert [o["value"] for o in fields["duration"]["options"]] == [5, 10, 15]
    assert [o["value"] for o in fields["aspect_ratio"]["options"]] == [
        "16:9",
        "9:16",
        "1:1",
        "4:3",
        "3:4",
        "21:9",
    ]
    assert {r["attributes"]["duration"] for r in pro["credit_rules"]} == {"5", "10", "15"}


async def test_model_ids_filter_and_root_level_variant(emu, http) -> None:
    tree = await products(http, emu, model_ids="ima-pro-fast")
    assert [leaf["id"] for leaf in leaves(tree)] == ["ima-pro-fast"]
    emu.set_variants(root_level=True)
    tree = await products(http, emu)
    assert len(tree) == 1 and tree[0]["type"] == "1"
    assert "ima-pro" in [leaf["id"] for leaf in leaves(tree)]


async def test_rule_spelling_variants(emu, http) -> None:
    from ima.emulator import DurationType, ResolutionCase

    emu.set_variants(duration_type=DurationType.NUMBER, resolution_case=ResolutionCase.UPPER)
    pro = next(leaf for leaf in leaves(await products(http, emu)) if leaf["id"] == "ima-pro")
    attrs = pro["credit_rules"][3]["attributes"]
    assert attrs == {"duration": 5, "resolution": "720P"}
    # The server normalises, so the client may send either spelling.
    status, body = await create(http, emu, payload(resolution="720P", duration="5"))
    assert (status, body["code"]) == (200, 0)


async def test_unknown_category_and_bad_app_are_rejected(emu, http) -> None:
    url = f"{emu.base_url}/open/v1/product/list"
    _, body = await call(
        http, "GET", url, params={"app": "ima", "platform": "web", "category": "text_to_song"}
    )
    assert body["code"] == 400
    _, body = await call(
        http, "GET", url, params={"app": "other", "platform": "web", "category": "text_to_video"}
    )
    assert body["code"] == 400


async def test_create_happy_path_bills_and_returns_ids(emu, http) -> None:
    status, body = await create(http, emu, payload())
    assert status == 200 and body["code"] == 0
    data = body["data"]
    assert data["id"].startswith("task_") and data["biz_id"] != data["id"]
    assert data["timeout_at"] - data["created_at"] == 2400 * 1000 and data["created_at"] > 1_600_000_000_000
    assert emu.balance(KEY) == 1000 - 30
    task = emu.tasks[data["id"]]
    assert (task.attribute_id, task.points, task.model_version) == (1104, 30, "ima-pro")


async def test_create_with_n_bills_each_output_and_detail_lists_n_medias(emu, http) -> None:
    _, body = await create(http, emu, payload(rule=T2V_PRO_1080_10, duration=10, resolution="1080p", n=2))
    assert body["code"] == 0
    assert emu.balance(KEY) == 1000 - 240
    emu.advance(10_000)
    medias = (await detail(http, emu, body["data"]["id"]))["data"]["medias"]
    assert len(medias) == 2 and all(m["resource_status"] == 1 for m in medias)
    assert medias[0]["url"] != medias[1]["url"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (payload(rule=(1109, 180), duration=15, resolution="1080p"), 6009),  # Pro has no 15 s 1080p rule
        (payload(resolution="4k"), 6009),
        (payload(rule=(1105, 30)), 6010),  # 1105 is 10 s 720p
        (payload(rule=(1104, 25)), 6006),
        (payload(rule=(0, 30)), 6010),
        (payload(task_type="image_to_video", rule=I2V_PRO_720_5) | {"task_type": "text_to_video"}, 400),
        (payload(version="ima-pro-v9"), 400),
        (payload(model_id="IMA-PRO"), 400),
    ],
)
async def test_create_rejections(emu, http, body, code) -> None:
    status, answer = await create(http, emu, body)
    assert status == 200 and answer["code"] == code and answer["message"]
    assert emu.tasks == {} and emu.balance(KEY) == 1000


async def test_cast_must_match_the_rule(emu, http) -> None:
    body = payload()
    body["parameters"][0]["parameters"]["cast"] = {"points": 30, "attribute_id": 1105}
    assert (await create(http, emu, body))[1]["code"] == 6006
    del body["parameters"][0]["parameters"]["cast"]
    assert (await create(http, emu, body))[1]["code"] == 6006


async def test_rule_keys_are_case_insensitive_and_bools_are_not_strings(emu, http) -> None:
    body = payload()
    inner = body["parameters"][0]["parameters"]
    inner["RESOLUTION"] = inner.pop("resolution")
    assert (await create(http, emu, body))[1]["code"] == 0


async def test_default_rule_catches_unmatched_params_on_the_old_leaf(emu, http) -> None:
    body = payload(rule=(1200, 30), version="ima-pro-v0", resolution="480p")
    assert (await create(http, emu, body))[1]["code"] == 0
    body = payload(rule=(1201, 30), version="ima-pro-v0")  # 720p 5 s has its own rule there
    assert (await create(http, emu, body))[1]["code"] == 0
    body = payload(rule=(1200, 30), version="ima-pro-v0")
    assert (await create(http, emu, body))[1]["code"] == 6010


async def test_insufficient_balance_gives_4008_and_bills_nothing(emu, http) -> None:
    status, body = await create(http, emu, payload(), key=POOR)
    assert (status, body["code"]) == (200, 4008)
    assert emu.balance(POOR) == 10 and emu.tasks == {}


async def test_media_checks(emu, http) -> None:
    img = "https://cdn.example.invalid/a.jpg"
    ok = payload(task_type="image_to_video", rule=I2V_PRO_720_5, images=(img,))
    assert (await create(http, emu, ok))[1]["code"] == 0
    mismatch = payload(task_type="image_to_video", rule=I2V_PRO_720_5, images=(img,))
    mismatch["src_img_url"] = []
    assert (await create(http, emu, mismatch))[1]["code"] == 400
    one_frame = payload(task_type="first_last_frame_to_video", rule=FLF_PRO_720_5, images=(img,))
    assert (await create(http, emu, one_frame))[1]["code"] == 400
    two = payload(task_type="first_last_frame_to_video", rule=FLF_PRO_720_5, images=(img, img + "?2"))
    assert (await create(http, emu, two))[1]["code"] == 0
    assert (await create(http, emu, payload(images=(img,))))[1]["code"] == 400
    no_image = payload(task_type="image_to_video", rule=I2V_PRO_720_5)
    assert (await create(http, emu, no_image))[1]["code"] == 400
    assert (await create(http, emu, payload(prompt=" ")))[1]["code"] == 400


async def test_reference_task_accepts_video_references_listed_in_input_images(emu, http) -> None:
    img, clip = "https://cdn.example.invalid/ref.jpg", "https://cdn.example.invalid/clip.mp4"
    body = payload(task_type="reference_image_to_video", rule=(4104, 30), images=(img,))
    body["src_video"] = [{"url": clip, "duration": 6, "width": 640, "height": 360}]
    body["parameters"][0]["parameters"]["input_images"] = [img, clip]
    assert (await create(http, emu, body))[1]["code"] == 0
    body["parameters"][0]["parameters"]["input_images"] = [img]
    assert (await create(http, emu, body))[1]["code"] == 400


async def test_detail_walks_pending_processing_success_on_the_clock(emu, http, clock) -> None:
    _, body = await create(
        http, emu, payload(model_id="ima-pro-fast", version="ima-pro-fast", rule=(1304, 15))
    )
    task_id = body["data"]["id"]
    media = (await detail(http, emu, task_id))["data"]["medias"][0]
    assert media["resource_status"] is None and media["status"] == "pending" and media["url"] == ""
    clock.now += 1.0  # fast: 90 s / speed 10 = 9 s; pending for the first 10 %
    media = (await detail(http, emu, task_id))["data"]["medias"][0]
    assert (media["resource_status"], media["status"]) == (0, "processing")
    clock.now += 7.9
    assert (await detail(http, emu, task_id))["data"]["medias"][0]["resource_status"] == 0
    clock.now += 0.2
    answer = await detail(http, emu, task_id)
    assert answer["code"] == 0 and answer["data"]["id"] == task_id
    media = answer["data"]["medias"][0]
    assert (media["resource_status"], media["status"], media["format"], media["duration_str"]) == (
        1,
        "success",
        "mp4",
        "5s",
    )
    assert media["cover"] == media["cover_url"] and media["cover_url"].endswith(".jpg")
    async with http.get(media["url"]) as resp:
        video = await resp.read()
        assert resp.status == 200 and resp.content_type == "video/mp4"
        assert video[4:8] == b"ftyp" and len(video) < 50_000
    async with http.get(media["cover_url"]) as resp:
        assert resp.content_type == "image/jpeg" and (await resp.read())[:2] == b"\xff\xd8"


async def test_cdn_has_no_video_before_the_task_finishes(emu, http) -> None:
    _, body = await create(http, emu, payload())
    url = f"{emu.base_url}/cdn/results/{body['data']['id']}/0.mp4"
    async with http.get(url) as resp:
        assert resp.status == 404
    emu.advance(20.0)  # ima-pro: 200 s / speed 10
    async with http.get(url) as resp:
        assert resp.status == 200


async def test_detail_of_unknown_or_foreign_task_gives_404_code(emu, http) -> None:
    assert (await detail(http, emu, "task_nope"))["code"] == 404
    _, body = await create(http, emu, payload())
    assert (await detail(http, emu, body["data"]["id"], key=OTHER))["code"] == 404


@pytest.mark.parametrize(
    ("variant", "present", "absent"),
    [("cover", "cover", "cover_url"), ("cover_url", "cover_url", "cover")],
)
async def test_cover_field_variants(http, clock, variant, present, absent) -> None:
    from ima.emulator import CoverField, PendingStatus

    variants = Variants(
        cover_field=CoverField(variant), pending_resource_status=PendingStatus.EMPTY, success_code=200
    )
    async with Emulator(EmulatorConfig(api_keys={KEY: 100}, variants=variants), clock=clock) as emu:
        _, body = await create(http, emu, payload())
        assert body["code"] == 200
        first = await detail(http, emu, body["data"]["id"])
        assert first["code"] == 200 and first["data"]["medias"][0]["resource_status"] == ""
        clock.now += 1000
        media = (await detail(http, emu, body["data"]["id"]))["data"]["medias"][0]
        assert media[present].endswith(".jpg") and absent not in media


async def test_mirrored_status_mode_maps_codes_to_http(emu, http) -> None:
    emu.mirror_status = True
    cases = [
        (payload(), KEY, 200, 0),
        (payload(), "ima_unknown_key_1234", 401, 401),
        (payload(), POOR, 402, 4008),
        (payload(rule=(1109, 180), duration=15, resolution="1080p"), KEY, 400, 6009),
        (payload(rule=(1105, 30)), KEY, 400, 6010),
        (payload(rule=(1104, 31)), KEY, 400, 6006),
    ]
    for body, key, status, code in cases:
        got_status, answer = await create(http, emu, body, key=key)
        assert (got_status, answer["code"]) == (status, code)
    _, answer = await call(http, "POST", f"{emu.base_url}/open/v1/tasks/detail", json={"task_id": "x"})
    assert answer["code"] == 404
    emu.mirror_status = False
    assert (await create(http, emu, payload(), key=POOR))[0] == 200


async def test_verify_status_is_configurable(emu, http) -> None:
    url = f"{emu.base_url}/open/v1/assets/verify"
    _, body = await call(http, "POST", url, json={"url": "https://x.invalid/a.jpg", "name": "a"})
    assert body["data"]["result"]["status"] == "Active"
    emu.state.verify_status = "failed"
    _, body = await call(http, "POST", url, json={"url": "https://x.invalid/a.jpg"})
    assert body["data"]["result"]["status"] == "failed" and body["data"]["result"]["error"]["message"]
    _, body = await call(http, "POST", url, json={})
    assert body["code"] == 400


async def test_underscore_header_is_accepted_and_logged(emu, http) -> None:
    await products(http, emu)
    record = emu.requests.find("/open/v1/product/list")[-1]
    assert record.headers["x_app_language"] == "en" and record.headers["x-app-source"] == "ima_skills"
    assert record.status == 200 and record.code == 0 and record.query["category"] == "text_to_video"
