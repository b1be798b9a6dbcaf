"""ImaClient.download: a result's bytes from the CDN, never more than the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ima import ImaClient
from ima.errors import ImaTransportError

BODY = bytes(range(256)) * 400  # 102 400 bytes


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def plain(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=BODY, content_type="video/mp4")

    async def chunked(request: web.Request) -> web.StreamResponse:
        # No Content-Length: the cap must hold while streaming.
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(BODY), 10_000):
            await resp.write(BODY[i : i + 10_000])
        await resp.write_eof()
        return resp

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="NoSuchKey")

    seen: list[dict[str, str]] = []
    app = web.Application()
    app.router.add_get("/v.mp4", plain)
    app.router.add_get("/chunked.mp4", chunked)
    app.router.add_get("/gone.mp4", gone)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
    assert all("Authorization" not in h for h in seen)  # the API key never goes to the CDN


@pytest.fixture
async def client() -> AsyncIterator[ImaClient]:
    async with aiohttp.ClientSession() as session:
        yield ImaClient(
            session, "ima_secret_key", base_url="http://127.0.0.1:9", upload_base_url="http://127.0.0.1:9"
        )


@pytest.mark.parametrize("path", ["/v.mp4", "/chunked.mp4"])
async def test_a_body_within_the_cap_comes_back_whole(server: str, client: ImaClient, path: str) -> None:
    assert await client.download(server + path, max_bytes=len(BODY)) == BODY


@pytest.mark.parametrize("path", ["/v.mp4", "/chunked.mp4"])
async def test_one_byte_over_the_cap_is_refused(server: str, client: ImaClient, path: str) -> None:
    with pytest.raises(ImaTransportError) as info:
        await client.download(server + path, max_bytes=len(BODY) - 1)
    assert info.value.code == "too_large"
    assert info.value.details["limit"] == len(BODY) - 1


async def test_an_error_status_is_a_transport_error_with_the_status(server: str, client: ImaClient) -> None:
    with pytest.raises(ImaTransportError) as info:
        await client.download(server + "/gone.mp4", max_bytes=10**6)
    assert info.value.code == 404


async def test_an_unreachable_host_is_a_transport_error(client: ImaClient) -> None:
    with pytest.raises(ImaTransportError) as info:
        await client.download("http://127.0.0.1:9/x.mp4", max_bytes=10**6)
    assert info.value.code == "transport"
