"""The decision before any job: a message is a command, chatter, a request, or a thin prompt to confirm. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from .matcher import fold, prefix_spans
from .parser import ParsedRequest, parse_with
from .tables import Tables, TablesError, default_tables

INTAKE_PATH = Path(__file__).with_name("intake.yaml")
COMMANDS = ("help", "jobs", "settings", "cancel", "retry")
_SAFE_TYPOS = ("help", "jobs", "settings")
MAX_CHATTER = 80  # longer messages are never taken for chatter or a bare command
_SUGGEST_CUTOFF = 50  # below this similarity the nearest command is /help
_TYPO_CUTOFF = 75  # a bare word this close to a command word (one slip in a short word) is that command
_SLASH = re.compile(
    r"[/!！／]\s*(?P<word>[a-z\u3400-\u9fff][a-z0-9_\-\u3400-\u9fff]{0,30})(?=\s|\Z|[,，:：])"
)
_PUNCT = r"\s,，、;；:：.。!！?？…~～\-—–·•'\"“”‘’()（）\[\]【】「」『』<>《》*#+=|/\\^"
_EMOJI = r"\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d"
_CONTENT_LATIN = re.compile(r"[^\W_]")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KV = re.compile(r"(?P<k>[a-z_]+)\s*[=:：]\s*(?P<v>\S+)")


class Kind(StrEnum):
    REQUEST = "request"  # make a job
    COMMAND = "command"  # a chat command (or an unknown slash word: command == "unknown")
    CHATTER = "chatter"  # greetings, thanks, questions about the bot: a short help reply
    CONFIRM = "confirm"  # too thin to spend credits on: ask first, no job until Generate is pressed


@dataclass(frozen=True)
class Decision:
    """What a message is. For COMMAND: command is one of COMMANDS or "unknown", args holds job_id or
    settings fields, or (for "unknown") word and suggestion. parsed is set for REQUEST and CONFIRM."""

    kind: Kind
    command: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    parsed: ParsedRequest | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is Kind.COMMAND:
            out["command"] = self.command
            out["args"] = dict(self.args)
        return out


class IntakeError(ValueError):
    """intake.yaml is malformed; .problems lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("intake.yaml: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class IntakeWords:
    words: Mapping[str, str]  # every command word (folded) → its command
    slash_words: tuple[str, ...]  # what a slash word may be suggested as (commands and generation words)
    generate: frozenset[str]
    setting_keys: Mapping[str, str]
    job_id: re.Pattern[str]
    chatter: re.Pattern[str]
    fillers: re.Pattern[str]
    min_prompt_chars: int


def build_intake(raw: Any) -> tuple[IntakeWords | None, list[str]]:
    """Compiles the parsed intake YAML; returns (words, []) or (None, every problem found)."""
    if not isinstance(raw, Mapping):
        return None, ["the file must hold a mapping"]
    problems: list[str] = []
    if raw.get("version") != 1:
        problems.append("version: must be 1")
    cmds = raw.get("commands") or {}
    words: dict[str, str] = {}
    if set(cmds) != set(COMMANDS):
        problems.append(f"commands: must name exactly {list(COMMANDS)}")
    for name, items in cmds.items():
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(w, str) and w.strip() for w in items)
        ):
            problems.append(f"commands.{name}: must be a non-empty list of words")
            continue
        for w in items:
            key = fold(w.strip())
            if words.setdefault(key, name) != name:
                problems.append(f"commands.{name}: {w!r} also names {words[key]}")
    gen = raw.get("generate") or []
    if not isinstance(gen, list) or not gen or not all(isinstance(w, str) for w in gen):
        problems.append("generate: must be a non-empty list of words")
        gen = []
    for w in gen:
        if fold(w) in words:
            problems.append(f"generate: {w!r} is also a command word")
    keys = raw.get("setting_keys") or {}
    if not isinstance(keys, Mapping) or not keys:
        problems.append("setting_keys: must map typed names to fields")  # (keys are read only when valid)
    patterns = raw.get("chatter") or []
    if not isinstance(patterns, list) or not patterns:
        problems.append("chatter: must be a non-empty list of regexes")
        patterns = []
    for i, p in enumerate(patterns):
        try:
            re.compile(str(p))
        except re.error as exc:
            problems.append(f"chatter[{i}]: bad regex {p!r}: {exc}")
    fillers = [re.escape(str(f)) for f in raw.get("fillers") or []]
    try:
        job_id = re.compile(str(raw.get("job_id") or ""))
        if not raw.get("job_id"):
            problems.append("job_id: missing")
    except re.error as exc:
        problems.append(f"job_id: bad regex: {exc}")
    minimum = raw.get("min_prompt_chars")
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
        problems.append("min_prompt_chars: must be a whole number ≥ 0")
    if problems:
        return None, problems
    gap = f"[{_PUNCT}{_EMOJI}]*"
    unit = "|".join(f"(?:{p})" for p in patterns)
    filler = "|".join(fillers) or r"(?!x)x"
    return IntakeWords(
        words=words,
        slash_words=tuple(dict.fromkeys([*(w for w in words if " " not in w), *(fold(g) for g in gen)])),
        generate=frozenset(fold(g) for g in gen),
        setting_keys={fold(str(k)): str(v) for k, v in keys.items()},
        job_id=job_id,
        chatter=re.compile(rf"{gap}(?:(?:{unit}|{filler}){gap})+", re.IGNORECASE),
        fillers=re.compile(rf"(?:{filler}|[{_PUNCT}{_EMOJI}])+"),
        min_prompt_chars=minimum,
    ), []


def load_intake(path: Path = INTAKE_PATH) -> IntakeWords:
    """Returns the compiled intake words of a file; raises IntakeError listing every problem."""
    words, problems = build_intake(yaml.safe_load(path.read_text(encoding="utf-8")))
    if words is None:
        raise IntakeError(problems)
    return words


@cache
def default_intake() -> IntakeWords:
    return load_intake()


def warm() -> None:
    """Compiles every table now (call at start-up, so the first message pays no compile cost)."""
    default_tables()
    default_intake()
    decide("/video 竖屏 10秒 一只小狗在草地上奔跑 fast", 0)


def content_size(prompt: str) -> int:
    """Content characters of a prompt: letters and digits, a CJK character counting as two."""
    return len(_CONTENT_LATIN.findall(prompt)) + len(_CJK.findall(prompt))


def decide(
    text: str, image_count: int = 0, *, options: Mapping[str, str] = {}, min_prompt_chars: int | None = None
) -> Decision:
    """Returns what the message is (see Kind). Never raises on any text."""
    return decide_with(
        default_tables(),
        default_intake(),
        text,
        image_count,
        options=options,
        min_prompt_chars=min_prompt_chars,
    )


def decide_with(
    tables: Tables,
    w: IntakeWords,
    text: str,
    image_count: int = 0,
    *,
    options: Mapping[str, str] = {},
    min_prompt_chars: int | None = None,
) -> Decision:
    """decide() with explicit tables."""
    text = text or ""
    images = max(0, int(image_count or 0))
    body = _without_mentions(tables, fold(text[:4000])).strip()
    command = _command(w, body)
    # With images, only a slash command standing alone counts ("/retry"); "/cancel 把这张图做成视频" is a request.
    alone = (
        command is not None
        and command.command in (*COMMANDS, "unknown")
        and len(body.split()) == 1
        and body[0] in "/!！／"
    )
    if command is not None and (not images or alone):
        return command
    if not images and len(body) <= MAX_CHATTER and (not w.fillers.sub("", body) or w.chatter.fullmatch(body)):
        return Decision(Kind.CHATTER)
    parsed = parse_with(tables, text, images, options=options)
    minimum = w.min_prompt_chars if min_prompt_chars is None else min_prompt_chars
    if images or not parsed.prompt or content_size(parsed.prompt) >= minimum:
        return Decision(Kind.REQUEST, parsed=parsed)
    return Decision(Kind.CONFIRM, parsed=parsed)


def _without_mentions(tables: Tables, norm: str) -> str:
    """The folded text without mentions (the command prefix stays: it is what a command starts with)."""
    spans = [(s, e) for s, e in prefix_spans(tables, norm) if norm[s] in "<@"]
    for s, e in reversed(spans):
        norm = norm[:s] + " " + norm[e:]
    return norm


def _command(w: IntakeWords, body: str) -> Decision | None:
    m = _SLASH.match(body)
    if m is not None:
        word, rest = m.group("word"), body[m.end() :].strip(" ,，:：")
        if word in w.generate:
            return None
        name = w.words.get(word)
        if name is None:
            return _unknown(w, word)
        return _with_args(w, name, rest, slash=True)
    if len(body) > MAX_CHATTER:
        return None
    head, _, rest = body.partition(" ")
    for cand, tail in ((body, ""), (head, rest)):
        cand = w.fillers.sub(" ", cand).strip()
        name = w.words.get(cand) or _typo(cand)
        if name is not None:
            return _with_args(w, name, tail.strip(), slash=False)
    return None


RESET_WORDS = frozenset({"reset", "clear", "重置", "清除", "恢复默认"})  # "/settings reset" and its synonyms


def _typo(word: str) -> str | None:
    """A latin word of four or more letters one slip away from a harmless command's name ("jbos",
    "setings"). Never cancel or retry: a slip must not stop a job or start a paid one."""
    if len(word) < 4 or not word.isascii() or not word.isalpha():
        return None
    got = process.extractOne(word, _SAFE_TYPOS, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF)
    return got[0] if got else None


def _with_args(w: IntakeWords, name: str, rest: str, *, slash: bool) -> Decision | None:
    """The command with its arguments; None when a bare word is followed by words no command takes."""
    if not rest or w.words.get(rest) == name:  # "help 帮助": the same command twice
        return Decision(Kind.COMMAND, name)
    if name in ("cancel", "retry"):
        token = rest.split()[0] if len(rest.split()) == 1 else ""
        if token and (w.job_id.fullmatch(token) or (slash and re.fullmatch(r"[a-z0-9_.\-]{1,80}", token))):
            return Decision(Kind.COMMAND, name, {"job_id": token})
    if name == "settings":
        if rest.lower() in RESET_WORDS:  # "/settings reset", "设置 重置": handed on as a key
            return Decision(Kind.COMMAND, name, {rest.lower(): ""})
        pairs = list(_KV.finditer(rest))
        if pairs and not _KV.sub("", rest).strip(" ,，;；"):
            return Decision(Kind.COMMAND, name, {w.setting_keys.get(p["k"], p["k"]): p["v"] for p in pairs})
    return Decision(Kind.COMMAND, name) if slash else None


def _unknown(w: IntakeWords, word: str) -> Decision:
    got = process.extractOne(word, w.slash_words, scorer=fuzz.ratio, score_cutoff=_SUGGEST_CUTOFF)
    suggestion = got[0] if got else "help"
    if suggestion.isascii() and suggestion in w.words:
        suggestion = w.words[suggestion]  # "job" → "jobs": suggest the command's own name
    return Decision(Kind.COMMAND, "unknown", {"word": word, "suggestion": suggestion})


__all__ = ["Decision", "IntakeError", "Kind", "TablesError", "decide", "decide_with", "load_intake", "warm"]
