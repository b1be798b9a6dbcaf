"""A typed console line → an intent. Pure but for looking at the files its path-like words name: an
image path becomes an attachment; a path that is not a readable image refuses the whole line (a mistyped
path must never turn into prompt text and a paid text-only video)."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    Command,
    CommandIntent,
    GenerationIntent,
    Intent,
    Origin,
)
from bot.core.media import sniff

IMAGE_EXT = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
# File types a user might point at by mistake: a word ending in one of these is treated as a path.
_FILE_EXT = IMAGE_EXT | {".txt", ".md", ".pdf", ".mp4", ".mov", ".heic", ".tif", ".tiff", ".svg", ".zip"}
_TRAILING = ",;:!?)]}>，。；：！？、）》」』\"'"
_LEADING = "([{<（《「『\"'"
_CJK_PUNCT = re.compile(r"(?<=[，。；：！？、）》」』])")  # splits after each, keeping it
_ROLE_BEFORE = (
    ("first", re.compile(r"(?:first|start|opening|begin\w*)[\s-]*frame\W*$|(?:首帧|开头|起始帧)\W*$", re.I)),
    ("last", re.compile(r"(?:last|end|final|ending|closing)[\s-]*frame\W*$|(?:尾帧|结尾|末帧)\W*$", re.I)),
)
ACTIONS = {"/retry": Action.RETRY, "/other": Action.OTHER_MODEL, "/generate": Action.GENERATE}
# issue 14: Continue ▶ and the one-tap variations, typed
ACTIONS.update(
    {"/continue": Action.CONTINUE, "/orientation": Action.VARY_ASPECT, "/length": Action.VARY_DURATION}
)
COMMANDS = {
    "/jobs": Command.JOBS,
    "/settings": Command.SETTINGS,
    "/cancel": Command.CANCEL,
    "/help": Command.HELP,
}


@dataclass(frozen=True)
class PathRefusal:
    """A path-like word that is not a readable image: the text key (console.path_*) and its values."""

    key: str
    params: dict[str, str] = field(default_factory=dict)


def to_intent(
    line: str, *, user: str, seq: int, cwd: Path, max_image_bytes: int = 20 * 2**20
) -> Intent | PathRefusal | None:
    """The intent a typed line asks for; a PathRefusal when it names a file that is not a usable image;
    None for a blank line."""
    text = line.strip()
    if not text:
        return None
    origin = Origin(platform="console", chat_id="console", user_id=user, message_id=f"m{seq}", is_direct=True)
    head, _, rest = text.partition(" ")
    if head in ACTIONS and rest.strip():
        return ActionIntent(origin=origin, job_id=rest.strip(), action=ACTIONS[head])
    if head in COMMANDS:
        if head == "/cancel" and rest.strip():
            return CommandIntent(origin=origin, command=Command.CANCEL, args={"job_id": rest.strip()})
        return CommandIntent(origin=origin, command=COMMANDS[head], args=_settings_args(head, rest))
    words: list[str] = []
    attachments: list[Attachment] = []
    for token in _tokens(text):
        # Chinese text has no spaces: `./a.png，尾帧` holds a path and a word.
        parts = [p for p in _CJK_PUNCT.split(token) if p]
        if not any(looks_like_path(strip_punctuation(p), cwd) for p in parts):
            words.append(token)
            continue
        for part in parts:
            core = strip_punctuation(part)
            if not looks_like_path(core, cwd):
                words.append(part)
                continue
            found = inspect_image(core, cwd, max_image_bytes)
            if isinstance(found, PathRefusal):
                return found
            role = next((r for r, rx in _ROLE_BEFORE if rx.search(" ".join(words[-3:]))), "")
            attachments.append(Attachment(**{**found.__dict__, "role": role}) if role else found)
    # Without a path the text stays exactly as typed (quotes, spacing); else the paths are taken out.
    prompt = " ".join(words) if attachments else text
    return GenerationIntent(origin=origin, text=prompt, attachments=tuple(attachments))


def _settings_args(head: str, rest: str) -> dict[str, str]:
    if head != "/settings":
        return {}
    words = rest.split()
    if len(words) == 1 and "=" not in words[0]:
        return {words[0]: ""}  # `/settings reset`: a bare word (the command says what it understood)
    return dict(kv.split("=", 1) for kv in words if "=" in kv)


def _tokens(text: str) -> list[str]:
    try:
        # Quotes keep a path with spaces in one word, and stay in the prompt's words (strip_punctuation
        # takes them off a path); backslashes are left alone.
        return shlex.split(text, posix=False)
    except ValueError:
        return text.split()


def strip_punctuation(token: str) -> str:
    """A word without the punctuation around it (`./night.png,` → `./night.png`); a trailing full stop
    goes only when what is left names a file type (`photo.png.`)."""
    core = token.lstrip(_LEADING).rstrip(_TRAILING)
    while core.endswith(".") and Path(core.rstrip(".")).suffix.lower() in _FILE_EXT:
        core = core[:-1]
    return core


def looks_like_path(word: str, cwd: Path) -> bool:
    """Whether a word is meant as a file: `./x`, `../x`, `~/x`, `/dir/x`, a file-type suffix, or an
    existing file with a suffix. A bare `/video` or `16/9` is not."""
    if not word:
        return False
    if word.startswith(("./", "../", "~/", ".\\", "..\\")):
        return True
    suffix = Path(word).suffix.lower()
    if word.startswith("/") and (word.count("/") > 1 or suffix):
        return True
    if suffix in _FILE_EXT:
        return True
    return bool(suffix) and _resolve(word, cwd).is_file()


def _resolve(word: str, cwd: Path) -> Path:
    path = Path(os.path.expanduser(word))
    return path if path.is_absolute() else cwd / path


def inspect_image(word: str, cwd: Path, max_bytes: int) -> Attachment | PathRefusal:
    """An attachment for a readable image file, else why not (missing, folder, unreadable, not an image,
    too large). Reads only the first bytes."""
    path = _resolve(word, cwd)
    try:
        if path.is_dir():
            return PathRefusal("console.path_folder", {"path": word})
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        return PathRefusal("console.path_missing", {"path": word, "cwd": str(cwd)})
    except OSError:
        return PathRefusal("console.path_unreadable", {"path": word})
    ctype = sniff_image(head)
    if ctype is None:
        return PathRefusal("console.path_not_image", {"path": word})
    if size > max_bytes:
        return PathRefusal(
            "console.path_too_large",
            {"path": word, "size_mb": f"{size / 2**20:.1f}", "limit_mb": f"{max_bytes / 2**20:.0f}"},
        )
    return Attachment(handle=str(path), filename=path.name, content_type=ctype, size=size)


def sniff_image(head: bytes) -> str | None:
    """The image type the first bytes show (bot.core.media decides), or None."""
    info = sniff(head)
    return info.mime if info else None
