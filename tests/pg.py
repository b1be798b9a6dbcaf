"""PostgreSQL for tests: a throwaway server (initdb + pg_ctl on a Unix socket in a temporary folder), or
the one IMABOT_TEST_PG_URL names (.ci/run starts one), and a fresh database per test.

Fixtures (a pytest plugin, loaded by tests/conftest.py):
  pg_server       session: the server's admin URL (database "postgres"); skips only when no PostgreSQL
                  server binary is installed
  pg_url          a URL of a new, empty database, dropped after the test
  store_location  parametrised: a SQLite file path, then a PostgreSQL URL (what JobStore.open takes)

Also a command for shell scripts: `python -m tests.pg start DIR` prints `export IMABOT_TEST_PG_URL=…`;
`python -m tests.pg stop DIR` stops that server.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

PG_ENV = "IMABOT_TEST_PG_URL"
T = TypeVar("T")


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: on PATH, else Debian's newest
    /usr/lib/postgresql/N/bin; None when no server is installed."""
    on_path = [shutil.which(name) for name in ("initdb", "pg_ctl", "postgres")]
    if all(on_path):
        return Path(os.path.realpath(on_path[1] or "")).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _runner() -> tuple[list[str], str | None]:
    """How to run the server's commands: initdb and postgres refuse root, so root runs them as the
    `postgres` system user (or `nobody`) through runuser; anyone else runs them as themselves."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL")


def start_server(folder: Path, *, options: str = "") -> str:
    """Creates a cluster in folder/data and starts it listening only on a Unix socket in folder (with
    extra server options, e.g. "-c shared_preload_libraries=pg_stat_statements"); returns its admin URL.
    Raises RuntimeError (with the server's log) when it does not start."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    prefix, user = _runner()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    if user is not None:
        shutil.chown(folder, user)
    data, log = folder / "data", folder / "server.log"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": False}
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    done = subprocess.run([*prefix, *initdb, "--locale=C", "--no-sync"], **quiet)
    if done.returncode:
        raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')}")
    # No TCP port (nothing to collide with); durability off: a test server's data is thrown away.
    options = (
        f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections=200 {options}"
    )
    done = subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        **quiet,
    )
    if done.returncode:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {done.stderr.decode(errors='replace')}\n{tail}")
    return f"postgresql://postgres@/postgres?host={folder}"


def stop_server(folder: Path) -> None:
    """Stops the server start_server started in folder (if it runs) and removes the folder."""
    bin_dir = find_bin_dir()
    if bin_dir is not None and (folder / "data" / "postmaster.pid").exists():
        prefix, _ = _runner()
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    shutil.rmtree(folder, ignore_errors=True)


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Runs a coroutine to completion on a loop of its own in another thread: usable from sync
    fixtures even while a test's loop runs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="pg-fixture")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def database_url(admin_url: str, name: str) -> str:
    """admin_url with its database replaced by name."""
    head, _, query = admin_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def _admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str) -> str:
    """Creates an empty database; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    run_sync(lambda: _admin(admin_url, f"CREATE DATABASE {name} TEMPLATE template0"))
    return database_url(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    run_sync(lambda: _admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def fetch_rows(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every row of one query (asyncpg's $1 placeholders) as dicts: for tests that check what another
    process stored."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server for this session."""
    if os.environ.get(PG_ENV):
        yield os.environ[PG_ENV]
        return
    if find_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
        )
    # /tmp: short enough for a Unix socket path (107 bytes), and open to the postgres user when root.
    folder = Path(tempfile.mkdtemp(prefix="imabot-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        url = start_server(folder)
    except BaseException:
        stop_server(folder)
        raise
    try:
        yield url
    finally:
        stop_server(folder)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL of a new, empty database on the session's server, dropped after the test."""
    url = create_database(pg_server)
    try:
        yield url
    finally:
        drop_database(pg_server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, once per back end: a SQLite path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.db")
    return request.getfixturevalue("pg_url")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.pg start|stop DIR", file=sys.stderr)
        return 2
    folder = Path(argv[1])
    if argv[0] == "stop":
        stop_server(folder)
        return 0
    print(f"export {PG_ENV}='{start_server(folder)}'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
