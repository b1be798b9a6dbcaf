"""What IMA's reflection changed is said with the values: the real App on the fake Feishu and the
emulator, which refuses the asked resolution (6010) so the create retries with another one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.model import JobState
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu_app import TEXTS, FeishuRig, open_rig, texts


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


async def test_a_resolution_ima_changed_is_shown_old_and_new_in_progress_and_final(rig: FeishuRig) -> None:
    rig.emulator.faults.add("create_code", code=6010, when={"resolution": "720p"})
    async with rig.app() as app:
        await rig.fake.push_event(text_event("a bridge at dusk, fast 5s 720p", mention_bot=BOT_OPEN_ID))
        (job,) = await rig.jobs(app, within=30)
    assert job.state is JobState.SUCCEEDED
    old, new = job.extra["reflected"]["resolution"]
    assert str(old).lower() == "720p" and str(new).lower() != "720p" and new == job.spec.resolution
    said = TEXTS("delivery.change_resolution", "en", old=old, new=new)
    final = rig.fake.messages[job.result_ref].card
    assert any(said in line for line in texts(final))
    assert any(said in line for card in rig.patches(job.notice_ref)[:-1] for line in texts(card))
