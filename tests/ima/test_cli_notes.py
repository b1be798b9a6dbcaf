"""The `ima` command's words: notes with units and display spellings, `--json` everywhere, one error code type."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ima.cli import main
from ima.cli.args import parse_args
from ima.cli.notes import note_text, value_text
from ima.cli.output import Console
from ima.errors import AuthError, ImaUsageError, TaskTimeout
from ima.explain import other_model_offers
from ima.models import ModelId, Note
from ima.params import resolve
from tests.ima.combo_table import bundled

HOLED, FULL = "holed grid", "full grid"


def shape(name: str):
    return next(p for t, p in bundled().items() if t.startswith(name))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_issue_examples_read_in_the_users_words(language: str) -> None:
    console = Console(language)
    combo = resolve(shape(HOLED), "text_to_video", {"duration": 15, "resolution": "1080p"}).notes
    seven = resolve(shape(HOLED), "text_to_video", {"duration": 7}).notes
    expected = {
        "en": [
            "Ima Sevio 1.0 offers 1080P only up to 10 s, so this is 720P at 15 s",
            "Ima Sevio 1.0 doesn't offer 7 s; made it 5 s",
        ],
        "zh": [
            "Ima Sevio 1.0 的 1080P 最多只到 10 秒，所以改为 15 秒 720P",
            "Ima Sevio 1.0 不提供 7 秒，已改为 5 秒",
        ],
    }[language]
    assert [note_text(console, n) for n in (*combo, *seven)] == expected


def test_the_other_model_is_named_when_it_offers_what_was_asked() -> None:
    fast = resolve(shape(FULL), "text_to_video", {"resolution": "1080p"})
    pro = resolve(shape(HOLED), "text_to_video", {"resolution": "1080p"})
    note = other_model_offers(fast.notes, pro.notes, ModelId.PRO)
    assert note is not None and dict(note.params) == {"model": "ima-pro", "values": {"resolution": "1080p"}}
    assert (
        note_text(Console(), note)
        == "Ima Sevio 1.0 offers 1080P: run again with --model-id ima-pro to get it"
    )
    assert other_model_offers(pro.notes, fast.notes, ModelId.FAST) is None  # nothing changed on pro
    both = resolve(shape(HOLED), "text_to_video", {"duration": 15, "resolution": "1080p"})
    fast_both = resolve(shape(FULL), "text_to_video", {"duration": 15, "resolution": "1080p"})
    assert other_model_offers(fast_both.notes, both.notes, ModelId.PRO) is None  # neither offers it


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("duration", "15", "15 s"),
        ("duration", 7.5, "7.5 s"),
        ("resolution", "720p", "720P"),
        ("audio", False, "off"),
        ("aspect_ratio", "16:9", "16:9"),
        ("duration", "long", "long"),
    ],
)
def test_values_have_units_and_display_spellings(field: str, value: object, text: str) -> None:
    assert value_text(Console(), field, value) == text


def test_a_note_without_a_text_is_shown_raw() -> None:
    assert note_text(Console(), Note("brand_new", {"x": 1})) == "brand_new: {'x': 1}"


@pytest.mark.parametrize(
    "command",
    [
        ["create", "--task-type", "text_to_video", "--prompt", "p"],
        ["products"],
        ["status", "t1"],
        ["emulator"],
    ],
)
@pytest.mark.parametrize("flag", ["--json", "--output-json"])
def test_json_is_accepted_on_every_subcommand(command: list[str], flag: str) -> None:
    assert parse_args([*command, flag]).output_json is True
    assert parse_args(command).output_json is False


@pytest.mark.parametrize(
    "error",
    [AuthError("no", code=401), ImaUsageError("bad"), TaskTimeout("late", task_id="t"), ValueError("x")],
)
def test_the_error_code_is_always_a_string(error: BaseException) -> None:
    out = io.StringIO()
    Console(json_mode=True, out=out, err=io.StringIO()).fail(error)
    assert isinstance(json.loads(out.getvalue().splitlines()[-1])["error"]["code"], str)


def test_a_local_file_that_is_not_an_image_fails_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture", encoding="utf-8")
    # Port 9 on localhost has no server: any request would end as "unreachable" (6), not usage (2).
    code = main(
        [
            "create",
            "--task-type",
            "image_to_video",
            "--model-id",
            "ima-pro",
            "--prompt",
            "p",
            "--input-images",
            str(text),
            "--json",
            "--base-url",
            "http://127.0.0.1:9",
            "--upload-base-url",
            "http://127.0.0.1:9",
            "--log-dir",
            str(tmp_path / "logs"),
            "--prefs-file",
            str(tmp_path / "prefs.json"),
        ],
        env={"IMA_API_KEY": "ima_test_key_0123456789"},
    )
    error = json.loads(capsys.readouterr().out.splitlines()[-1])["error"]
    assert code == 2 and error["code"] == "usage" and "not an image" in error["message"]


def test_every_client_note_has_a_cli_text() -> None:
    from ima import NOTE_KEYS
    from ima.cli.output import load_texts

    assert {f"note_{k}" for k in NOTE_KEYS} <= set(load_texts()["en"])
