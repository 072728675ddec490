"""The media guard: /media/... only for browsers with a live login grant."""

from __future__ import annotations

import asyncio

import pytest

from dashboard import media_guard


async def _downstream(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"image bytes"})


def _request(path: str, cookie: str | None) -> tuple[int, bytes]:
    headers = [] if cookie is None else [(b"cookie", f"other=1; {media_guard.XSRF_COOKIE}={cookie}".encode())]
    scope = {"type": "http", "path": path, "headers": headers}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    asyncio.run(media_guard.MediaGuardMiddleware(_downstream)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    media_guard._granted.clear()


def test_media_refused_without_login():
    assert _request("/media/abc.png", None)[0] == 403
    assert _request("/media/abc.png", "unknown-cookie")[0] == 403
    status, body = _request("/media/abc.png", None)
    assert b"image bytes" not in body


def test_media_served_after_grant_and_refused_after_revoke():
    media_guard.grant("browser-1", ttl_s=60)
    assert _request("/media/abc.png", "browser-1") == (200, b"image bytes")
    assert _request("/media/abc.png", "browser-2")[0] == 403
    media_guard.revoke("browser-1")
    assert _request("/media/abc.png", "browser-1")[0] == 403


def test_grant_expires():
    media_guard.grant("browser-1", ttl_s=-1)
    assert not media_guard.is_allowed("browser-1")
    assert _request("/media/abc.png", "browser-1")[0] == 403


def test_other_paths_pass_through():
    assert _request("/_stcore/health", None)[0] == 200
    assert _request("/", None)[0] == 200


def test_empty_cookie_is_never_granted():
    media_guard.grant("", ttl_s=60)
    media_guard.grant(None, ttl_s=60)
    assert not media_guard.is_allowed("") and not media_guard.is_allowed(None)
