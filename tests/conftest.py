"""Suite-wide guards (every connection a test opens must stay on loopback) and the PostgreSQL fixtures."""

from __future__ import annotations

import ipaddress
import socket

import pytest

# PostgreSQL fixtures (pg_server, pg_url, store_location): tests/pg.py.
pytest_plugins = ["tests.pg"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NonLoopbackConnection(AssertionError):
    pass


def _is_loopback_host(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback_host(host):
        raise NonLoopbackConnection(f"test tried to connect beyond loopback: {address!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_loopback_host(host):
        raise NonLoopbackConnection(f"test tried to resolve a non-loopback host: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """lark-oapi makes an event loop at import and never closes it; close it so no ResourceWarning leaks."""
    import sys

    ws_client = sys.modules.get("lark_oapi.ws.client")
    loop = getattr(ws_client, "loop", None)
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.close()
