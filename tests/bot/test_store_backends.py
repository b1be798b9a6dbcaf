"""Choosing the store's back end: `store.url` in the config, store URLs whose password never shows, the
`?` placeholder rewrite, a PostgreSQL store whose database goes away, and a whole App on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config
from bot.jobs._postgres import _clean, to_dollar
from bot.jobs._sql import is_postgres_url, mask_url, url_password
from bot.jobs.model import JobState
from bot.jobs.store import JobStore, StoreError
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock
from tests.bot.test_store import Clock, make_job
from tests.ops.apps import running_app
from tests.pg import drop_database

SECRET = "S3cret-pw-7781"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"postgresql://bot:{SECRET}@db:5432/imabot", "postgresql://bot:***@db:5432/imabot"),
        (f"postgres://bot:{SECRET}@/imabot?host=/run/pg", "postgres://bot:***@/imabot?host=/run/pg"),
        (
            f"postgresql://bot@db/imabot?sslmode=require&password={SECRET}&x=1",
            "postgresql://bot@db/imabot?sslmode=require&password=***&x=1",
        ),
        (f"postgresql://db/imabot?password={SECRET}", "postgresql://db/imabot?password=***"),
        ("postgresql://bot@db/imabot", "postgresql://bot@db/imabot"),
        (f"postgresql://bot:{SECRET}@x@db/imabot", "postgresql://bot:***@db/imabot"),  # "@" in a password
    ],
)
def test_a_store_url_is_shown_without_its_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    password = url_password(url)
    assert password == ("" if SECRET not in url else f"{SECRET}@x" if "@x@" in url else SECRET)


def test_an_unparsable_url_is_not_shown_at_all() -> None:
    url = f"postgresql://bot:{SECRET}@[::1/imabot"  # an unclosed IPv6 bracket: urlsplit refuses it
    assert mask_url(url) == "<unparsable store URL>"
    assert url_password(url) == ""


def test_only_postgres_urls_choose_postgresql() -> None:
    assert is_postgres_url("postgresql://h/db") and is_postgres_url("POSTGRES://h/db")
    for other in ("/data/imabot.sqlite3", "postgresql:/h/db", "mysql://h/db", "", None, Path("x")):
        assert not is_postgres_url(other)


def test_placeholders_become_numbered() -> None:
    assert to_dollar("SELECT ? , ?,?") == "SELECT $1 , $2,$3"
    assert to_dollar("SELECT 1") == "SELECT 1"


def test_config_store_url_is_checked_and_its_password_is_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"store": {"url": f"mysql://bot:{SECRET}@db/imabot"}})
    assert info.value.key == "store.url" and SECRET not in str(info.value)
    assert "mysql://bot:***@db/imabot" in str(info.value)
    c = parse_config({"store": {"url": f"postgresql://bot:{SECRET}@db/imabot"}})
    assert SECRET in c.secrets()
    assert parse_config({}).store.url == ""  # SQLite stays the default
    # With a URL the SQLite path is not used, so a path nobody could write is no error.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    unusable = {"path": str(blocker / "jobs.sqlite3")}
    with pytest.raises(ConfigError):
        parse_config({"store": unusable})
    assert parse_config({"store": {**unusable, "url": "postgresql://db/imabot"}}).store.url


async def test_an_unreachable_database_is_a_store_error_without_the_password(
    pg_server: str, tmp_path: Path
) -> None:
    host = pg_server.partition("host=")[2]
    errors = []
    for url in (
        f"postgresql://postgres:{SECRET}@/no_such_db?host={host}",  # the server refuses
        f"postgresql://postgres:{SECRET}@/imabot?host={tmp_path}",  # nothing listens there
    ):
        with pytest.raises(StoreError) as info:
            await JobStore.open(url)
        errors.append(str(info.value))
        assert SECRET not in str(info.value) and "***" in str(info.value), info.value
        assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "no_such_db" in errors[0]  # the server's reason is kept
    # Should a driver ever quote the password in an error, it is masked there too.
    assert _clean(OSError(f"connect to bot:{SECRET}@db failed"), SECRET) == "connect to bot:***@db failed"


async def test_a_database_that_goes_away_fails_writes_as_plain_store_errors(pg_server: str) -> None:
    from tests.pg import create_database

    url = create_database(pg_server)
    store = await JobStore.open(url, clock=Clock())
    try:
        assert store.backend == "postgresql" and await store.ping() and store.write_error == ""
        await store.add_job(make_job("j1"))
        drop_database(pg_server, url)  # WITH (FORCE): every connection is cut
        assert await store.ping() is False
        with pytest.raises(StoreError) as info:
            await store.transition("j1", JobState.PREPARING)
        assert type(info.value) is StoreError  # a fault (retried by the runner), not a refusal
        assert store.write_error
    finally:
        await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get_job("j1")


async def test_an_app_on_postgresql_runs_a_job_without_a_file_lock_or_the_password_showing(
    pg_url: str, tmp_path: Path
) -> None:
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")  # trust: unused
    clock = VirtualClock()
    async with (
        Emulator(EmulatorConfig(), clock=clock) as emu,
        running_app(tmp_path, emu, clock, store={"url": url}) as r,
    ):
        assert r.app.store is not None and r.app.store.backend == "postgresql"
        r.feed.say("/video fast 5s a red kite over the sea")

        async def finished():  # type: ignore[no-untyped-def]
            jobs = await r.jobs()
            return jobs[0] if len(jobs) == 1 and jobs[0].finished and jobs[0].result_ref else None

        job = await r.wait_for(finished)
        assert job.state is JobState.SUCCEEDED
        status, _, health = await r.get("/healthz")
        assert status == 200 and json.loads(health)["store"] is True
        _, _, metrics = await r.get("/metrics")
        assert SECRET not in health and SECRET not in metrics
    assert _sqlite_files(tmp_path) == []  # neither the SQLite file nor its lock was made


def _sqlite_files(folder: Path) -> list[Path]:
    return list(folder.glob("*.sqlite3*"))
