import asyncio, pytest, time
from tests.bot.feishu_bench import running, StandIn, Script, PNG
from tests.fakes.feishu_server import FakeFeishu
from tests.fakes.feishu_events import text_event, BOT_OPEN_ID

@pytest.fixture
def fake():
    with FakeFeishu() as f:
        yield f

async def test_smoke(fake):
    st = StandIn(Script())
    async with running(fake, st) as b:
        ev = text_event("a cat surfing", mention_bot=BOT_OPEN_ID)
        ack = await fake.push_event(ev)
        print(ack)
        await st.wait_intents(1)
        await st.finish_jobs()
        print(st.intents)
        for m in fake.bot_messages(): print(m.msg_type, m.parent_id, len(m.patches), m.content[:200])
    for c in fake.calls: print(c.method, c.path, c.status, c.code)
