"""Bench (issue 17): how long one message can hold the event loop in the parser, worst cases included.

Every message is cleaned and capped the way the dispatcher does it (bot/core/text.py) and then decided
(bot/parsing/kind.py: what the dispatcher runs on the loop). Reports the cold first call (no warm-up), the
warm-up itself (App.start runs it off the loop), and p50 / p99 / max per message over hostile shapes:
100 KB walls of text, keyword floods, digits, emoji, mixed scripts, control characters.

python bench/hostile_parse.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_ms, machine
from bot.core.text import clean_text


def corpus(rng: random.Random) -> list[str]:
    words = [
        "竖屏",
        "10秒",
        "pro",
        "fast",
        "16:9",
        "1080p",
        "首帧",
        "参考",
        "first frame",
        "4k",
        "极速",
        "--ar 9:16",
    ]
    shapes = [
        "a" * 100_000,
        "一只小狗在草地上奔跑" * 10_000,
        " ".join(rng.choice(words) for _ in range(20_000)),
        "10秒 " * 25_000,
        "9:16 16:9 " * 10_000,
        "1" * 100_000,
        "🐕" * 50_000,
        "\x00\x1b[31m\u202e" * 20_000 + "a fox",
        "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(100_000)),
        "/video " + "--duration 10 " * 8000,
        ("A long description of a scene. " * 200).strip(),
        "/video 竖屏 10秒 一只小狗在草地上奔跑",
    ]
    return [f"/video {s}" for s in shapes] + shapes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    from bot.parsing.kind import decide, warm

    messages = corpus(random.Random(17))
    started = time.perf_counter()
    decide(clean_text("/video 竖屏 10秒 一只小狗在草地上奔跑"), 0)  # cold: compiles the tables on first use
    cold = time.perf_counter() - started
    started = time.perf_counter()
    warm()
    warm_s = time.perf_counter() - started

    per_message: list[float] = []
    cpu: list[float] = []  # this thread's CPU time: what the message costs, whatever else runs on the host
    by_length: dict[int, list[float]] = {}
    for _ in range(a.rounds):
        for text in messages:
            t0, c0 = time.perf_counter(), time.thread_time()
            decide(clean_text(text), 0)
            per_message.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        for n in (300, 1000, 4000):  # the same worst shapes cut shorter (PARSE_ON_LOOP_CHARS = 300)
            for text in messages:
                c0 = time.thread_time()
                decide(clean_text(text, n), 0)
                by_length.setdefault(n, []).append(time.thread_time() - c0)
    print(f"machine: {machine()}")
    print(f"cold first decide (no warm-up): {cold * 1000:.0f} ms; warm() after it: {warm_s * 1000:.1f} ms")
    print(f"{len(per_message)} hostile messages (clean + cap + decide), wall: {describe_ms(per_message)}")
    print(f"same, CPU time of the parsing thread: {describe_ms(cpu)}")
    for n, values in by_length.items():
        print(f"  capped at {n} chars, CPU: {describe_ms(values)}")


if __name__ == "__main__":
    main()
