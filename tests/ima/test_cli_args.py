"""Pure parts of the `ima` command: argument parsing, settings, model choice, output, exit codes."""

from __future__ import annotations

import io
import json

import pytest

from ima.aliases import normalize_model_id
from ima.cli.args import (
    choose_model,
    clamp_max_wait,
    normalize_argv,
    parse_args,
    parse_overrides,
    resolve_connection,
    resolve_path,
)
from ima.cli.create import ProgressCadence, progress_every, result_json
from ima.cli.output import (
    EXIT_API,
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TASK_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Console,
    exit_code_for,
    load_texts,
)
from ima.cli.query import allowed_products, describe_options, format_products, product_to_json
from ima.errors import (
    AuthError,
    CreateOutcomeUnknown,
    ImaError,
    ImaTransportError,
    ImaUsageError,
    InsufficientCredits,
    ModelNotAllowed,
    ServerError,
    TaskFailed,
    TaskTimeout,
    UploadError,
)
from ima.models import (
    API_KEY_URL,
    CreatedTask,
    CreditRule,
    Media,
    ModelId,
    Product,
    ResolvedTask,
    Task,
    TaskState,
    TaskType,
)

KEY = "ima_cli_test_key_0123456789abcdef"
BASES = {"default_base": "https://api.example", "default_upload": "https://up.example"}


def test_vendor_flags_parse() -> None:
    args = parse_args(
        [
            "create",
            "--api-key",
            KEY,
            "--task-type",
            "image_to_video",
            "--model-id",
            "Ima Sevio 1.0",
            "--prompt",
            "zoom in",
            "--input-images",
            "a.jpg",
            "https://x/b.png",
            "--input-images",
            "c.jpg",
            "--extra-params",
            '{"duration": 10}',
            "--user-id",
            "u1",
            "--output-json",
        ]
    )
    assert args.command == "create"
    assert args.task_type == "image_to_video"
    assert args.model_id == "Ima Sevio 1.0"
    assert args.input_images == ["a.jpg", "https://x/b.png", "c.jpg"]  # repeatable, merged
    assert args.user_id == "u1"
    assert args.output_json is True
    assert (args.poll_interval, args.max_wait, args.language) == (8.0, 2400.0, "en")


def test_vendor_style_without_subcommand_means_create() -> None:
    assert normalize_argv(["--task-type", "text_to_video"])[0] == "create"
    assert normalize_argv(["status", "t1"]) == ["status", "t1"]
    assert normalize_argv(["--help"]) == ["--help"]
    args = parse_args(["--task-type", "text_to_video", "--prompt", "p"])
    assert (args.command, args.prompt, args.input_images) == ("create", "p", [])


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--task-type", "text_to_image", "--prompt", "p"],
        ["create", "--prompt", "p"],
        ["create", "--task-type", "text_to_video", "--poll-interval", "0"],
        ["create", "--task-type", "text_to_video", "--max-wait", "soon"],
        ["status"],
        ["products", "--category", "music"],
        ["bogus"],
        [],
    ],
)
def test_bad_arguments_raise_a_usage_error_instead_of_exiting(argv: list[str]) -> None:
    with pytest.raises(ImaUsageError) as info:
        parse_args(argv)
    assert info.value.code == "usage"
    assert exit_code_for(info.value) == EXIT_USAGE


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["create", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "--max-wait" in out and "--input-images" in out
    for code in (EXIT_USAGE, EXIT_API, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_UNREACHABLE):
        assert f"\n  {code} " in EXIT_CODES_HELP


def test_subcommand_options() -> None:
    products = parse_args(["products", "--category", "first_last_frame_to_video", "--json"])
    assert (products.category, products.output_json) == ("first_last_frame_to_video", True)
    assert parse_args(["products"]).category is None
    status = parse_args(["status", "task_1", "--output-json", "--language", "zh"])
    assert (status.task_id, status.output_json, status.language) == ("task_1", True, "zh")
    emulator = parse_args(["emulator", "--port", "9000", "--speed", "50", "--config", "e.yaml"])
    assert (emulator.host, emulator.port, emulator.speed, emulator.config) == (
        "127.0.0.1",
        9000,
        50.0,
        "e.yaml",
    )


def test_connection_prefers_flags_then_env_then_defaults() -> None:
    args = parse_args(["create", "--task-type", "text_to_video"])
    conn = resolve_connection(args, {"IMA_API_KEY": KEY}, **BASES)
    assert (conn.api_key, conn.base_url, conn.upload_base_url) == (
        KEY,
        "https://api.example",
        "https://up.example",
    )
    env = {"IMA_API_KEY": KEY, "IMA_BASE_URL": "http://127.0.0.1:1/", "IMA_IM_BASE_URL": "http://127.0.0.1:2"}
    conn = resolve_connection(args, env, **BASES)
    assert (conn.base_url, conn.upload_base_url) == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    env["IMA_UPLOAD_BASE_URL"] = "http://127.0.0.1:3"
    assert resolve_connection(args, env, **BASES).upload_base_url == "http://127.0.0.1:3"
    flagged = parse_args(
        [
            "create",
            "--task-type",
            "text_to_video",
            "--api-key",
            "ima_flag",
            "--base-url",
            "http://b",
            "--upload-base-url",
            "http://u",
        ]
    )
    conn = resolve_connection(flagged, env, **BASES)
    assert (conn.api_key, conn.base_url, conn.upload_base_url) == ("ima_flag", "http://b", "http://u")


def test_missing_key_points_at_the_key_page() -> None:
    args = parse_args(["status", "t"])
    with pytest.raises(ImaUsageError) as info:
        resolve_connection(args, {"IMA_API_KEY": "  "}, **BASES)
    assert info.value.code == "missing_api_key"
    assert API_KEY_URL in info.value.hint


def test_paths_and_overrides() -> None:
    assert resolve_path(None, {"IMA_PREFS_FILE": "/e"}, "IMA_PREFS_FILE", "/d") == "/e"
    assert resolve_path("/f", {"IMA_PREFS_FILE": "/e"}, "IMA_PREFS_FILE", "/d") == "/f"
    assert resolve_path(None, {}, "IMA_PREFS_FILE", "/d") == "/d"
    assert parse_overrides('{"duration": 10, "resolution": "720p"}', "1024x1024") == {
        "size": "1024x1024",
        "duration": 10,
        "resolution": "720p",
    }
    assert parse_overrides(None) == {}
    for bad in ("{oops", "[1, 2]", '"720p"'):
        with pytest.raises(ImaUsageError):
            parse_overrides(bad)
    assert clamp_max_wait(9999) == 2400
    assert clamp_max_wait(1.5) == 1.5


def test_model_choice_order() -> None:
    prefs = {"user_default": {"text_to_video": {"model_id": "ima-pro"}, "image_to_video": {"model_id": "x"}}}
    assert choose_model("Ima Sevio 1.0-Fast", prefs, "default", "text_to_video", normalize_model_id) == (
        ModelId.FAST,
        "arg",
    )
    assert choose_model(None, prefs, "default", "text_to_video", normalize_model_id) == (ModelId.PRO, "pref")
    assert choose_model(None, prefs, "default", "image_to_video", normalize_model_id) == (
        ModelId.FAST,
        "default",
    )
    assert choose_model(None, {}, "other", "text_to_video", normalize_model_id) == (ModelId.FAST, "default")
    with pytest.raises(ModelNotAllowed):
        choose_model("kling", prefs, "default", "text_to_video", normalize_model_id)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ImaUsageError("x"), EXIT_USAGE),
        (ModelNotAllowed("x"), EXIT_USAGE),
        (AuthError("x", code=401), EXIT_API),
        (InsufficientCredits("x", code=4008), EXIT_API),
        (ServerError("x", code=500), EXIT_API),
        (UploadError("x"), EXIT_API),
        (ImaError("x"), EXIT_API),
        (TaskFailed("x", task_id="t"), EXIT_TASK_FAILED),
        (TaskTimeout("x", task_id="t"), EXIT_TIMEOUT),
        (ImaTransportError("x"), EXIT_UNREACHABLE),
        (CreateOutcomeUnknown("x"), EXIT_UNREACHABLE),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
        (ValueError("x"), EXIT_INTERNAL),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def _console(language: str = "en", json_mode: bool = True) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(language, json_mode=json_mode, out=out, err=err, secrets=(KEY,)), out, err


def test_failure_prints_the_json_error_line_last_and_never_the_key() -> None:
    console, out, err = _console()
    code = console.fail(AuthError(f"key {KEY} rejected", code=401))
    assert code == EXIT_API
    last = out.getvalue().splitlines()[-1]
    body = json.loads(last)["error"]
    assert body["code"] == "401"
    assert API_KEY_URL in body["hint"]
    assert KEY not in out.getvalue() + err.getvalue()
    assert "ima_cli_te..." in body["message"]
    assert err.getvalue().startswith("Error: ")


def test_unexpected_failure_has_a_generic_code() -> None:
    console, out, err = _console("zh")
    assert console.fail(ValueError("bad"), log_dir="/logs") == EXIT_INTERNAL
    body = json.loads(out.getvalue().splitlines()[-1])["error"]
    assert body["code"] == "internal"
    assert "ValueError: bad" in body["message"]
    assert "/logs" in body["hint"]
    assert "错误" in err.getvalue()


def test_human_mode_prints_no_json() -> None:
    console, out, err = _console(json_mode=False)
    console.fail(TaskTimeout("late", task_id="t"))
    assert out.getvalue() == ""
    assert "creation records" in err.getvalue()


def test_every_text_exists_in_both_languages_with_the_same_fields() -> None:
    import string

    tables = load_texts()
    assert set(tables["en"]) == set(tables["zh"])
    for key, template in tables["en"].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        zh_fields = {f for _, f, _, _ in string.Formatter().parse(tables["zh"][key]) if f}
        assert fields == zh_fields, key


def test_progress_cadence() -> None:
    assert progress_every(8) == 30
    assert progress_every(5) == 15
    assert progress_every(0.05) == 15
    cadence = ProgressCadence(30)
    printed = [t for t in (0, 8, 16, 24, 32, 40, 48, 56, 64, 72) if cadence.due(t)]
    assert printed == [32, 64]


def _product(model_id: str = "ima-pro", version: str = "v1") -> Product:
    return Product(
        id=version,
        model_id=model_id,
        name="IMA Video Pro",
        credit_rules=(
            CreditRule(9101, 30, {"duration": "5", "resolution": "720p"}),
            CreditRule(9100, 20, {"default": "enabled"}),
        ),
        form_config=(
            {
                "field": "duration",
                "type": "tags",
                "value": 5,
                "options": [{"label": "5s", "value": 5}, {"value": 10}],
            },
            {"field": "audio", "value": True},
            {"type": "tags"},
            {
                "field": "mode",
                "is_ui_virtual": True,
                "value": "std",
                "ui_params": [
                    {"id": "quality", "value": "720p", "options": [{"value": "720p"}, {"value": "1080p"}]}
                ],
            },
        ),
    )


def test_products_json_and_table() -> None:
    products = [_product(), _product("kling-v2"), _product("IMA-PRO-FAST", "v2")]
    allowed = allowed_products(products)
    assert [p.id for p in allowed] == ["v1", "v2"]
    item = product_to_json("text_to_video", allowed[1])
    assert (item["model_id"], item["model_name"], item["version_id"]) == (
        "ima-pro-fast",
        "Ima Sevio 1.0-Fast",
        "v2",
    )
    assert item["options"][0] == {"field": "duration", "default": 5, "options": [5, 10]}
    assert item["options"][2]["ui_params"] == [
        {"field": "quality", "default": "720p", "options": ["720p", "1080p"]}
    ]
    assert item["credit_rules"][0] == {
        "attribute_id": 9101,
        "points": 30,
        "attributes": {"duration": "5", "resolution": "720p"},
    }
    assert len(describe_options(_product().form_config)) == 3  # the entry without a field is skipped
    console, _, _ = _console(json_mode=False)
    text = "\n".join(
        format_products(console, "text_to_video", [product_to_json("text_to_video", p) for p in allowed])
    )
    assert "Ima Sevio 1.0 · model_id ima-pro · version_id v1" in text
    assert "duration       5        5, 10" in text
    assert "9101:   30 ← duration=5, resolution=720p" in text
    assert "(fallback rule)" in text
    assert "no allowed model" in format_products(console, "text_to_video", [])[0]


def test_result_json_has_the_vendor_fields() -> None:
    resolved = ResolvedTask(TaskType.TEXT_TO_VIDEO, ModelId.PRO, _product(), CreditRule(9101, 30, {}), {})
    created = CreatedTask("task_1", resolved, attempts=2)
    media = Media(1, "success", "https://cdn/v.mp4", "https://cdn/c.jpg", "")
    task = Task("task_1", (media,), TaskState.SUCCEEDED)
    assert result_json(created, task) == {
        "task_id": "task_1",
        "url": "https://cdn/v.mp4",
        "cover_url": "https://cdn/c.jpg",
        "model_id": "ima-pro",
        "model_name": "Ima Sevio 1.0",
        "credit": 30,
    }
