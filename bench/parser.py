"""Bench 4, parser throughput: zh/en chat messages per second through bot.parsing.parse (one core).

python bench/parser.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_ms, machine
from bot.parsing import decide, parse, warm

# (text, attached images): what people type at the bot, in both languages, short and long.
CORPUS: list[tuple[str, int]] = [
    ("/video 竖屏 10秒 一只小狗在草地上奔跑", 0),
    ("@VideoBot 帮我生成一个视频：夕阳下的海边，海浪拍打礁石，电影感，16:9，1080p", 0),
    ("用pro模型做一段15秒的视频，一个宇航员在月球上慢慢行走，地球在背景中升起", 0),
    ("极速 5秒 横屏 猫咪追逐激光笔", 0),
    ("把这张图做成视频，让头发随风飘动", 1),
    ("第一张图是首帧，第二张是尾帧，中间过渡自然一点，10秒", 2),
    ("参考这几张图片，生成一个产品展示视频，竖屏，高清", 3),
    ("请用 Sevio 1.0 生成：城市夜景延时摄影，车流如织，霓虹闪烁，4K", 0),
    ("<@1234567890> make a video of a red fox running through deep snow at dawn, 9:16, 10s", 0),
    ("/video fast 5 seconds a paper boat drifting down a rainy street gutter", 0),
    ("Generate a cinematic clip: a lighthouse in a storm, waves crashing, 21:9, pro model, 1080p", 0),
    ("animate this photo so the water ripples and the clouds move slowly", 1),
    ("use the first image as the first frame and the second as the last frame, 8 seconds", 2),
    ("hey bot, could you please create a short video of a hummingbird feeding on a flower, slow motion", 0),
    ("portrait 720p twenty seconds: a chef flipping pancakes in a busy kitchen", 0),
    ("make it 4k square, a timelapse of a flower blooming", 0),
    ("a fast car drifting around a mountain corner at sunset", 0),  # "fast" here is part of the prompt
    ("these pictures as references: a cozy cabin interior, fireplace crackling, snow outside the window", 4),
    ("生成视频 一个小女孩在雨中撑着红色的伞跳舞，慢动作，柔和的光线，9:16，十五秒，专业版", 0),
    ("@_user_1 来个小视频：熊猫在竹林里吃竹子，可爱，5秒后熊猫打了个滚", 0),
    ("默认模型 默认时长 一只蝴蝶停在花上", 0),
    ("Ima Sevio 1.0-Fast, 16:9, 5s — drone shot over a glacier, blue ice, mist", 0),
    ("video of waves", 0),
    ("狗", 0),
    ("/video", 0),
    (("A long description of a scene. " * 60).strip(), 0),
    (("一段很长的描述，包括人物、场景、光线、镜头运动和情绪。" * 40), 0),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args()
    started = time.perf_counter()
    warm()  # loads and compiles phrases.yaml and intake.yaml once (the App does this at start)
    load = time.perf_counter() - started

    per_message: list[float] = []
    cpu_per_message: list[float] = []
    count = 0
    deadline = time.perf_counter() + a.seconds
    began, cpu_began = time.perf_counter(), time.process_time()
    while time.perf_counter() < deadline:
        for text, images in CORPUS:
            t0, c0 = time.perf_counter(), time.process_time()
            parse(text, images)
            per_message.append(time.perf_counter() - t0)
            cpu_per_message.append(time.process_time() - c0)
        count += len(CORPUS)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    # The decision before any job (parse plus command/chatter checks): what a message really costs.
    decided: list[float] = []
    for text, images in CORPUS * 3:
        t0 = time.perf_counter()
        decide(text, images)
        decided.append(time.perf_counter() - t0)
    long_ones = [len(t) for t, _ in CORPUS if len(t) > 500]
    print(
        f"parser: {len(CORPUS)} zh/en messages (1 to {max(len(t) for t, _ in CORPUS)} characters), "
        f"{a.seconds:g} s on one core"
    )
    print(f"  machine        {machine()}")
    print(f"  tables         loaded and compiled in {load * 1000:.0f} ms (once per process)")
    print(f"  throughput     {count / elapsed:.0f} messages/s ({elapsed / count * 1e6:.0f} µs per message)")
    # On a shared machine wall time counts other processes' turns too; CPU time is this process's own work.
    print(
        f"  CPU time       {count / cpu:.0f} messages/s of CPU ({cpu / elapsed:.0%} of the wall time was ours)"
    )
    print(f"  per message    {describe_ms(per_message)}")
    print(f"  CPU / message  {describe_ms(cpu_per_message)}")
    print(f"  decide()       {describe_ms(decided)}")
    print(
        f"  long messages  {len(long_ones)} of {len(CORPUS)} are over 500 characters ({', '.join(map(str, long_ones))})"
    )


if __name__ == "__main__":
    main()
