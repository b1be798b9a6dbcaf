"""The loopback guard itself must bite."""

import socket

import pytest

from tests.conftest import NonLoopbackConnection


def test_non_loopback_connect_is_refused() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NonLoopbackConnection):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()


def test_non_loopback_name_is_refused() -> None:
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.connect(srv.getsockname())
    finally:
        c.close()
        srv.close()
