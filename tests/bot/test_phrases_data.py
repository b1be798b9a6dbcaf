"""bot/parsing/phrases.yaml is well-formed, consistent, and every note it can produce has texts."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from bot.jobs.texts import Texts, placeholders
from bot.parsing import parse
from bot.parsing.entries import phrase_regex
from bot.parsing.tables import FIELDS, build, load_raw

PARSER_DIR = Path(__file__).resolve().parents[2] / "bot" / "parsing"


@pytest.fixture(scope="module")
def raw() -> dict:
    return load_raw()


def test_phrase_file_builds_without_problems(raw: dict) -> None:
    tables, problems = build(raw)
    assert problems == []
    assert tables is not None
    assert set(tables.fields) == set(FIELDS)
    assert all(tables.fields[f].rules for f in FIELDS)


def test_validator_reports_every_problem_at_once(raw: dict) -> None:
    broken = copy.deepcopy(raw)
    model = broken["fields"]["model"]["entries"]
    model.append({"value": "ima-pro", "phrases": ["fast"]})  # "fast" already means ima-pro-fast
    model.append({"value": "ima-ultra", "phrases": ["ultra"]})  # not an allowed model
    broken["fields"]["duration"]["entries"].append({"convert": "seconds", "patterns": ["(?P<n>\\d+"]})
    broken["fields"]["duration"]["entries"].append({"convert": "seconds", "patterns": ["(\\d+)秒"]})
    broken["fields"]["aspect_ratio"]["entries"].append(
        {"value": "16:9", "phrases": ["wide"], "note": "note.nope"}
    )
    broken["fields"]["resolution"]["entries"].append({"value": "HD", "phrases": ["hd2"], "colour": "red"})
    broken["fields"]["bogus"] = {"entries": []}
    broken["vendors"]["list"].append({"model": "kling", "names": ["x"]})
    _, problems = build(broken)
    text = "\n".join(problems)
    for expected in (
        "phrase 'fast' also means 'ima-pro-fast'",
        "bad model value 'ima-ultra'",
        "bad regex '(?P<n>\\\\d+'",
        "lacks the groups seconds needs",
        "note 'note.nope' is not listed",
        "bad resolution value 'HD'",
        "unknown keys ['colour']",
        "fields.bogus: unknown field",
        "needs model ima-pro or ima-pro-fast",
    ):
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    assert len(problems) >= 9


def test_every_regex_compiles(raw: dict) -> None:
    """build() compiles everything; this names each broken pattern separately for a readable failure."""
    tables, _ = build(raw)
    assert tables is not None
    bad = []
    for field, spec in raw["fields"].items():
        for i, entry in enumerate(spec.get("entries", [])):
            for src in entry.get("patterns", []):
                try:
                    re.compile(src.replace("%", ""))  # macros stripped: syntax only
                except re.error as exc:
                    bad.append(f"{field}[{i}] {src!r}: {exc}")
            for ph in entry.get("phrases", []):
                re.compile(phrase_regex(str(ph)))
    assert bad == []


def test_no_phrase_means_two_values_of_one_field(raw: dict) -> None:
    problems = []
    for field, spec in raw["fields"].items():
        seen: dict[str, object] = {}
        for entry in spec.get("entries", []):
            for ph in entry.get("phrases", []):
                key = " ".join(str(ph).lower().replace("-", " ").split())
                if key in seen and seen[key] != entry.get("value"):
                    problems.append(f"{field}: {ph!r} → {seen[key]!r} and {entry.get('value')!r}")
                seen.setdefault(key, entry.get("value"))
    assert problems == []


def test_each_phrase_alone_parses_to_its_own_value(raw: dict) -> None:
    """No phrase is shadowed by a longer phrase or a deny rule: said alone, it means what the table says."""
    problems = []
    for field in ("model", "duration", "aspect_ratio", "resolution"):
        for entry in raw["fields"][field]["entries"]:
            if "value" not in entry:
                continue
            for ph in entry.get("phrases", []):
                got = parse(str(ph))
                value = {
                    "model": (got.model_id and got.model_id.value)
                    or ("default" if got.model_id is None else None),
                    "duration": got.duration,
                    "aspect_ratio": got.aspect_ratio,
                    "resolution": got.resolution,
                }[field]
                if field == "model" and entry["value"] != "default" and got.model_id is None:
                    value = None
                if value != entry["value"] or got.prompt:
                    problems.append(
                        f"{field}: {ph!r} → {value!r}, prompt {got.prompt!r}; table says {entry['value']!r}"
                    )
    assert problems == []


def test_vendor_names_alone_map_with_a_note(raw: dict) -> None:
    problems = []
    for vendor in raw["vendors"]["list"]:
        for name in vendor.get("names", []) + vendor.get("weak_names", []):
            got = parse(name)
            keys = [n.key for n in got.notes]
            if got.model_id is None or got.model_id.value != vendor["model"] or keys != ["note.model_mapped"]:
                problems.append(f"{name!r} → {got.model_id} {keys}")
    assert problems == []


def test_note_keys_have_texts_in_both_locales(raw: dict) -> None:
    texts = Texts.load()
    problems = []
    for key, params in raw["notes"].items():
        for locale in ("en", "zh"):
            if key not in texts.keys(locale):
                problems.append(f"{key} missing in {locale}.yaml")
                continue
            template = texts.section("note", locale)[key.removeprefix("note.")]
            extra = placeholders(template) - set(params)
            if extra:
                problems.append(f"{key} ({locale}) uses {sorted(extra)} the parser never passes")
            texts(key, locale, **{p: "x" for p in params})  # formats without error
    assert problems == []


def test_every_note_the_code_emits_is_declared(raw: dict) -> None:
    """Keys written in the parser's source and in the phrase entries are all listed under notes."""
    emitted = set()
    for path in PARSER_DIR.glob("*.py"):
        emitted |= set(re.findall(r"\"(note\.[a-z_]+)\"", path.read_text(encoding="utf-8")))
    for spec in raw["fields"].values():
        emitted |= {e["note"] for e in spec.get("entries", []) if "note" in e}
    assert emitted, "no note keys found in the parser"
    assert emitted - set(raw["notes"]) == set()
    assert set(raw["notes"]) - emitted == set(), "declared notes nobody emits"


def test_the_typo_list_is_checked_and_optional(raw: dict) -> None:
    from bot.parsing.parser import parse_with

    broken = copy.deepcopy(raw)
    broken["typos"] = {"cutoff": 40, "min_length": 2, "words": ["landscape", "not a phrase", "横屏"]}
    _, problems = build(broken)
    text = "\n".join(problems)
    for expected in (
        "typos.cutoff",
        "typos.min_length",
        "'not a phrase' is not a one-word latin phrase",
        "'横屏' is not a one-word latin phrase",
    ):
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    assert "'landscape'" not in text
    broken["typos"] = ["landscape"]
    assert "typos: must be a mapping" in build(broken)[1]
    del broken["typos"]
    tables, problems = build(broken)
    assert problems == [] and tables is not None and tables.typos == {}
    r = parse_with(tables, "a cat, landscpae")  # no slips are guessed without the list
    assert (r.aspect_ratio, r.prompt) == (None, "a cat, landscpae")
