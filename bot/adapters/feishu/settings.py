"""FeishuSettings: what the composition root passes the Feishu adapter (secrets never in repr)."""

from __future__ import annotations

from dataclasses import dataclass, field

TRANSPORTS = ("ws", "webhook")


@dataclass(frozen=True)
class FeishuSettings:
    app_id: str
    app_secret: str = field(repr=False)
    domain: str = "https://open.feishu.cn"  # or https://open.larksuite.com
    transport: str = "ws"  # "ws" (long connection, no public URL) | "webhook"
    encrypt_key: str = field(default="", repr=False)
    verification_token: str = field(default="", repr=False)
    chat_allowlist: frozenset[str] = frozenset()  # chat ids (oc_) or user open_ids (ou_); empty admits all
    send_video_file: bool = False  # also post the mp4 as an in-chat video when it is <= 30 MB
    max_image_bytes: int = 20 * 1024 * 1024
    min_patch_interval: float = 10.0  # progress patches closer than this (per card) are dropped
    patch_floor: float = 0.25  # any two patches of one card are at least this far apart (5/s limit)
    retry_base: float = 1.0  # first backoff on rate limits / 5xx, doubled per attempt
    retry_attempts: int = 3
    notify_on_finish: bool = True  # a short reply pinging the user when a patched card turns final
    http_timeout: float = 30.0
    webhook_max_age: float = 300.0  # a signed push stamped further than this from now is a replay: 401
