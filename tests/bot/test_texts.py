"""The locale files are data: validated together, every problem reported at once."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.jobs.texts import LOCALES, Texts, placeholders

ROOT = Path(__file__).resolve().parents[2]


def _problems(texts: Texts) -> list[str]:
    problems = []
    en = texts.keys("en")
    for loc in LOCALES:
        keys = texts.keys(loc)
        problems += [f"{loc}: missing {k}" for k in sorted(en - keys)]
        problems += [f"{loc}: extra {k}" for k in sorted(keys - en)]
        for k in sorted(keys & en):
            if placeholders(texts(k, loc)) != placeholders(texts(k, "en")):
                problems.append(f"{loc}: {k} placeholders differ from en")
            if not texts(k, loc).strip():
                problems.append(f"{loc}: {k} is empty")
    return problems


def test_locales_have_the_same_keys_and_placeholders() -> None:
    assert _problems(Texts.load()) == []


def test_the_check_catches_a_broken_table() -> None:
    broken = Texts({"en": {"a.b": "{x} items", "c": "ok"}, "zh": {"a.b": "{y} 个"}})
    assert _problems(broken) == ["zh: missing c", "zh: a.b placeholders differ from en"]


def test_every_text_key_named_in_code_exists() -> None:
    texts = Texts.load()
    sections = {k.split(".")[0] for k in texts.keys("en")}
    missing = []
    # The pipeline's modules name full keys; adapters name keys inside their own section (their tests check).
    pipeline = [
        *ROOT.joinpath("bot", "jobs").glob("*.py"),
        ROOT / "bot" / "dispatch.py",
        ROOT / "bot" / "commands.py",
    ]
    for path in pipeline:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                head = value.split(".")[0]
                if (
                    "." in value
                    and head in sections
                    and " " not in value
                    and "{" not in value
                    and not value.endswith(".")
                    and not texts.has(value)
                ):
                    missing.append(f"{path.relative_to(ROOT)}: {value}")
    assert missing == []


def test_model_names_are_the_sevio_names_in_both_languages() -> None:
    texts = Texts.load()
    for loc in LOCALES:
        assert texts("model.ima-pro", loc) == "Ima Sevio 1.0"
        assert texts("model.ima-pro-fast", loc) == "Ima Sevio 1.0-Fast"


def test_durations_and_ranges_read_naturally_in_both_languages() -> None:
    from bot.jobs.progress import format_duration, format_range

    texts = Texts.load()
    assert format_duration(texts, 125, "en") == "2m 05s" and format_duration(texts, 45, "zh") == "45秒"
    assert format_duration(texts, 125, "zh") == "2分05秒"
    assert (
        format_range(texts, 60, 120, "en") == "1–2 min" and format_range(texts, 60, 120, "zh") == "1–2 分钟"
    )
    assert (
        format_range(texts, 20, 40, "en") == "20–40 s"
        and format_range(texts, 100, 110, "en") == "about 2 min"
    )
