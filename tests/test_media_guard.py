"""The media guard: /media/... only for browsers with a live login grant."""

from __future__ import annotations

import asyncio

import pytest

from dashboard import media_guard


async def _downstream(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"image bytes"})


#: Which Streamlit session each media file was made for (stands in for Streamlit's media manager).
FILES = {"abc": "session-1", "theirs": "session-9"}


def _owns(file_id, sessions):
    return FILES.get(file_id) in set(sessions)


def _request(path: str, cookie: str | None) -> tuple[int, bytes]:
    headers = [] if cookie is None else [(b"cookie", f"other=1; {media_guard.XSRF_COOKIE}={cookie}".encode())]
    scope = {"type": "http", "path": path, "headers": headers}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    asyncio.run(media_guard.MediaGuardMiddleware(_downstream, owns=_owns)(scope, receive, send))
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
    media_guard.grant("browser-1", ttl_s=60, session_id="session-1")
    assert _request("/media/abc.png", "browser-1") == (200, b"image bytes")
    assert _request("/media/abc.png", "browser-2")[0] == 403
    media_guard.revoke("browser-1")
    assert _request("/media/abc.png", "browser-1")[0] == 403


def test_another_sessions_file_is_refused_even_when_logged_in():
    media_guard.grant("browser-1", ttl_s=60, session_id="session-1")
    assert _request("/media/abc.png", "browser-1")[0] == 200
    assert _request("/media/theirs.png", "browser-1")[0] == 403  # made for another browser's session
    assert _request("/media/unknown.png", "browser-1")[0] == 403


def test_a_browser_with_several_sessions():
    media_guard.grant("browser-1", ttl_s=60, session_id="session-1")
    media_guard.grant("browser-1", ttl_s=60, session_id="session-9")
    assert _request("/media/theirs.png", "browser-1")[0] == 200
    assert media_guard.sessions_of("browser-1") == {"session-1", "session-9"}


def test_without_a_running_streamlit_nothing_is_owned():
    assert not media_guard.streamlit_file_owned("abc", ["session-1"])


def test_grant_expires():
    media_guard.grant("browser-1", ttl_s=-1, session_id="session-1")
    assert not media_guard.is_allowed("browser-1")
    assert _request("/media/abc.png", "browser-1")[0] == 403


def test_other_paths_pass_through():
    assert _request("/_stcore/health", None)[0] == 200
    assert _request("/", None)[0] == 200
    # The app's bundled fonts live under /static/media/: public, not patient data.
    assert _request("/static/media/MaterialSymbolsRounded.woff2", None)[0] == 200


def test_prefix_follows_the_base_url(monkeypatch):
    from streamlit import config

    assert media_guard.media_prefix() == "/media/"
    monkeypatch.setattr(config, "get_option", lambda name: "/clinic/" if name == "server.baseUrlPath" else None)
    assert media_guard.media_prefix() == "/clinic/media/"


def test_empty_cookie_is_never_granted():
    media_guard.grant("", ttl_s=60)
    media_guard.grant(None, ttl_s=60)
    assert not media_guard.is_allowed("") and not media_guard.is_allowed(None)


@pytest.mark.parametrize(
    ("cookie", "token"),
    [
        # Streamlit re-masks the same XSRF token on every /_stcore/health answer: both are one browser.
        ("2|23d0ff7e|f64175221896101534097525c20b1245|1795509948", "d5918a5c3b46ef6b17d98a5be1dbed3b"),
        ("2|bf24bc6e|6ab5363284625305a8fd36355eff5155|1795509948", "d5918a5c3b46ef6b17d98a5be1dbed3b"),
        ("plain-cookie-value", "plain-cookie-value"),  # not a version-2 value: its own key
        ("2|zz|not-hex|1", "2|zz|not-hex|1"),
        ("", None),
        (None, None),
    ],
)
def test_cookie_token_unmasks_the_xsrf_token(cookie, token):
    assert media_guard.cookie_token(cookie) == token
