"""Protect Streamlit's media endpoint: image and download bytes only for a logged-in browser.

Streamlit serves ``st.image`` pictures and ``st.download_button`` files at ``/media/<id>`` with no
login check (DESIGN section 8). The dashboard therefore runs as an ``st.App`` (``server.py``) with
:class:`MediaGuardMiddleware`: a request under ``/media/`` is answered only when it carries the
Streamlit XSRF cookie of a browser that logged in and has not logged out or timed out. The page grants
the cookie at login (:func:`grant`) and revokes it at logout or expiry (:func:`revoke`). Everything
else passes through untouched.

The registry lives in the server process (one process serves all sessions).
"""

from __future__ import annotations

import threading
import time

XSRF_COOKIE = "_streamlit_xsrf"
_lock = threading.Lock()
_granted: dict[str, float] = {}  # cookie value -> expiry (monotonic seconds)


def grant(cookie: str | None, *, ttl_s: float) -> None:
    """Allow media requests carrying this cookie for ``ttl_s`` seconds (renewed on each page run)."""
    if not cookie:
        return
    with _lock:
        _granted[cookie] = time.monotonic() + ttl_s


def revoke(cookie: str | None) -> None:
    """Withdraw the grant of a cookie (logout, timeout)."""
    if not cookie:
        return
    with _lock:
        _granted.pop(cookie, None)


def is_allowed(cookie: str | None) -> bool:
    """True when the cookie belongs to a logged-in browser whose grant has not expired."""
    if not cookie:
        return False
    now = time.monotonic()
    with _lock:
        expiry = _granted.get(cookie)
        if expiry is None:
            return False
        if expiry < now:
            del _granted[cookie]
            return False
        return True


class MediaGuardMiddleware:
    """ASGI middleware refusing ``/media/...`` requests from browsers that are not logged in (403)."""

    def __init__(self, app, prefix: str = "/media/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send) -> None:
        guarded = scope.get("type") == "http" and self.prefix in scope.get("path", "")
        if guarded and not is_allowed(_cookie(scope, XSRF_COOKIE)):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"Forbidden: log in to see this file.\n"})
            return
        await self.app(scope, receive, send)


def _cookie(scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name:
                    return cookie_value
    return None
