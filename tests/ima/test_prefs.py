"""The preferences file: vendor shape, tolerant reads, atomic writes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ima.errors import ImaUsageError
from ima.models import ModelId
from ima.prefs import get_preferred_model, load_prefs, save_prefs, user_key, with_recent_use


def _normalize(name: str) -> ModelId:
    # A stand-in normaliser with the same contract: a ModelId, or ImaUsageError for anything else.
    try:
        return ModelId(name.strip().lower())
    except ValueError:
        raise ImaUsageError(f"not allowed: {name}") from None


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert load_prefs(tmp_path / "nope.json") == {}


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]", '"text"', "\xff\xfe"])
def test_corrupt_or_non_object_file_reads_as_empty(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prefs.json"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    assert load_prefs(path) == {}


def test_invalid_utf8_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_bytes(b'{"user_default": "\xff"}')
    assert load_prefs(path) == {}


def test_recent_use_has_the_vendor_shape_and_keeps_other_entries() -> None:
    before = {"user_default": {"image_to_video": {"model_id": "ima-pro"}}, "user_bob": {"x": 1}}
    now = datetime(2026, 3, 18, 10, 0, 0, 123456, tzinfo=UTC)
    after = with_recent_use(before, "default", "text_to_video", ModelId.FAST, 25, now=now)
    assert after["user_default"]["text_to_video"] == {
        "model_id": "ima-pro-fast",
        "model_name": "Ima Sevio 1.0-Fast",
        "credit": 25,
        "last_used": "2026-03-18T10:00:00.123456+00:00",
    }
    assert after["user_default"]["image_to_video"] == {"model_id": "ima-pro"}
    assert after["user_bob"] == {"x": 1}
    assert "text_to_video" not in before["user_default"]  # the input is not mutated


def test_recent_use_replaces_a_non_object_user_entry() -> None:
    after = with_recent_use({"user_x": "junk"}, "x", "text_to_video", ModelId.PRO, 30)
    assert after["user_x"]["text_to_video"]["model_name"] == "Ima Sevio 1.0"
    assert datetime.fromisoformat(after["user_x"]["text_to_video"]["last_used"]).tzinfo is not None


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"model_id": "ima-pro"}, ModelId.PRO),
        ({"model_id": " IMA-PRO-FAST "}, ModelId.FAST),
        ({"model_id": "kling-v2"}, None),
        ({"model_id": 7}, None),
        ("ima-pro", None),
        ({}, None),
    ],
)
def test_preferred_model_only_when_it_normalises(stored: object, expected: ModelId | None) -> None:
    prefs = {user_key("default"): {"text_to_video": stored}}
    assert get_preferred_model(prefs, "default", "text_to_video", _normalize) is expected


def test_preferred_model_is_per_user_and_task_type() -> None:
    prefs = {"user_alice": {"text_to_video": {"model_id": "ima-pro"}}}
    assert get_preferred_model(prefs, "alice", "image_to_video", _normalize) is None
    assert get_preferred_model(prefs, "bob", "text_to_video", _normalize) is None
    assert get_preferred_model({"user_alice": []}, "alice", "text_to_video", _normalize) is None


def test_save_then_load_round_trips_with_indent_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "prefs.json"
    prefs = {"user_张三": {"text_to_video": {"model_id": "ima-pro", "model_name": "Ima Sevio 1.0"}}}
    save_prefs(path, prefs)
    text = path.read_text(encoding="utf-8")
    assert "张三" in text  # ensure_ascii=False
    assert text.startswith('{\n  "user_')  # indent=2
    assert load_prefs(path) == prefs
    assert [p.name for p in path.parent.iterdir()] == ["prefs.json"]  # no temp file left behind


def test_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    save_prefs(path, {"user_default": {"a": 1}})
    with pytest.raises(TypeError):
        save_prefs(path, {"user_default": {"a": object()}})  # not JSON-serialisable
    assert json.loads(path.read_text(encoding="utf-8")) == {"user_default": {"a": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["prefs.json"]


def test_write_goes_through_a_rename(tmp_path: Path) -> None:
    # A reader holding the old file keeps reading the old content: the new file is a new inode.
    path = tmp_path / "prefs.json"
    save_prefs(path, {"v": 1})
    with path.open(encoding="utf-8") as old:
        inode = os.fstat(old.fileno()).st_ino
        save_prefs(path, {"v": 2})
        assert json.loads(old.read()) == {"v": 1}
    assert path.stat().st_ino != inode
    assert load_prefs(path) == {"v": 2}
