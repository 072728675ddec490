"""Protect Streamlit's media endpoint: image and download bytes only for the browser they were made for.

Streamlit serves ``st.image`` pictures and ``st.download_button`` files at ``/media/<id>`` with no
login check (DESIGN section 8). The dashboard therefore runs as an ``st.App`` (``server.py``) with
:class:`MediaGuardMiddleware`: a request under ``/media/`` is answered only when

1. it carries the Streamlit XSRF cookie of a browser that logged in and has not logged out or timed
   out (the page grants the cookie with its Streamlit session id at every run: :func:`grant`, and
   revokes it at logout or expiry: :func:`revoke`), and
2. the requested file belongs to one of that browser's own Streamlit sessions (Streamlit's media
   manager records which session each file was made for), so a logged-in patient who obtained
   another patient's media URL still gets 403.

Everything else passes through untouched. The registry lives in the server process (one process
serves all sessions). Grants are keyed by the token inside the cookie, not its raw text: Streamlit
re-masks the cookie (``2|mask|masked token|time``) on every ``/_stcore/health`` answer, which the page
fetches at each (re)connection, so the raw text changes during a login while the token stays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

XSRF_COOKIE = "_streamlit_xsrf"
_lock = threading.Lock()
#: cookie value -> (expiry in monotonic seconds, Streamlit session ids of that browser)
_granted: dict[str, tuple[float, set[str]]] = {}


def cookie_token(cookie: str | None) -> str | None:
    """The XSRF token inside a cookie value (hex), the same whatever mask the server wrapped it in.

    A version-2 value ``2|<mask hex>|<token XOR mask, hex>|<timestamp>`` gives its unmasked token; any
    other non-empty value is its own key. None or "" gives None (never granted).
    """
    if not cookie:
        return None
    parts = cookie.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        except ValueError:
            return cookie
        if len(mask) == 4 and masked:
            return bytes(byte ^ mask[i % 4] for i, byte in enumerate(masked)).hex()
    return cookie


def grant(cookie: str | None, *, ttl_s: float, session_id: str | None = None) -> None:
    """Allow media requests carrying this cookie for ``ttl_s`` seconds (renewed on each page run)."""
    cookie = cookie_token(cookie)
    if not cookie:
        return
    with _lock:
        _, sessions = _granted.get(cookie, (0.0, set()))
        if session_id:
            sessions = sessions | {session_id}
        _granted[cookie] = (time.monotonic() + ttl_s, sessions)


def revoke(cookie: str | None) -> None:
    """Withdraw the grant of a cookie (logout, timeout)."""
    cookie = cookie_token(cookie)
    if not cookie:
        return
    with _lock:
        _granted.pop(cookie, None)


def sessions_of(cookie: str | None) -> set[str] | None:
    """The session ids of a logged-in browser, or None when the cookie has no live grant."""
    cookie = cookie_token(cookie)
    if not cookie:
        return None
    now = time.monotonic()
    with _lock:
        entry = _granted.get(cookie)
        if entry is None:
            return None
        if entry[0] < now:
            del _granted[cookie]
            return None
        return set(entry[1])


def is_allowed(cookie: str | None) -> bool:
    """True when the cookie belongs to a logged-in browser whose grant has not expired."""
    return sessions_of(cookie) is not None


def streamlit_file_owned(file_id: str, session_ids: Iterable[str]) -> bool:
    """True when Streamlit's media manager holds ``file_id`` for one of these sessions."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    manager = Runtime.instance().media_file_mgr
    with manager._lock:  # the manager's own bookkeeping: {session id: {coordinates: file id}}
        for session_id in session_ids:
            if file_id in manager._files_by_session_and_coord.get(session_id, {}).values():
                return True
            if file_id in manager._deferred_ids_by_session.get(session_id, set()):
                return True
    return False


class MediaGuardMiddleware:
    """ASGI middleware refusing ``/media/...`` requests from browsers that are not logged in (403)."""

    def __init__(
        self, app, prefix: str | None = None, owns: Callable[[str, Iterable[str]], bool] = streamlit_file_owned
    ) -> None:
        self.app = app
        self.prefix = prefix if prefix is not None else media_prefix()
        self.owns = owns

    def _allowed(self, scope) -> bool:
        sessions = sessions_of(_cookie(scope, XSRF_COOKIE))
        if not sessions:
            return False
        name = scope.get("path", "").rsplit("/", 1)[-1]
        return self.owns(name.split(".", 1)[0], sessions)

    async def __call__(self, scope, receive, send) -> None:
        # Only the media endpoint itself: the app's own static files (e.g. /static/media/*.woff2) are public.
        guarded = scope.get("type") == "http" and scope.get("path", "").startswith(self.prefix)
        if guarded and not self._allowed(scope):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"Forbidden: log in to see this file.\n"})
            return
        await self.app(scope, receive, send)


def media_prefix() -> str:
    """``/media/`` under the configured ``server.baseUrlPath``."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/media/" if base else "/media/"


def _cookie(scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name:
                    return cookie_value
    return None
