"""Login, logout, session timeouts and the acting user of the dashboard.

Pages never decide access themselves: they pass :func:`current_actor` to the services, which check
scope. This module only keeps who is logged in, for how long, and tells the media guard.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import media_guard
from dashboard.state import get_store
from tracker.accounts import (
    AuthenticationFailed,
    SessionPolicy,
    active_user,
    authenticate,
    authenticate_external,
    create_first_admin,
    needs_first_admin,
)
from tracker.errors import TrackerError
from tracker.services import Actor
from tracker.services.access import audit

POLICY = SessionPolicy()
_KEY = "auth"


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def _cookie() -> str | None:
    try:
        return st.context.cookies.get(media_guard.XSRF_COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (e.g. tests): nothing to grant
        return None


def current_actor() -> Actor | None:
    """The logged-in user as an Actor, or None (also after an idle or absolute timeout)."""
    session = st.session_state.get(_KEY)
    if not session:
        return None
    try:
        actor = Actor(username=session["username"], role=session["role"], user_id=session["user_id"],
                      patient_id=session["patient_id"])
        started_at, last_seen = session["started_at"], session["last_seen"]
    except (KeyError, TypeError, ValueError):  # not a valid login: start again
        st.session_state.pop(_KEY, None)
        media_guard.revoke(_cookie())
        return None
    now = time.time()
    if POLICY.is_expired(started_at, last_seen, now):
        logout(actor, reason="Your session timed out: please log in again.")
        return None
    if active_user(get_store(), actor.user_id) is None:
        logout(actor, reason="This account is disabled.")
        return None
    session["last_seen"] = now
    media_guard.grant(_cookie(), ttl_s=POLICY.idle_timeout_s, session_id=_session_id())
    return actor


def logout(actor: Actor | None, *, reason: str | None = None, action: str = "session_expired") -> None:
    """Forget the login of this browser session, withdraw its media access, audit it."""
    st.session_state.pop(_KEY, None)
    media_guard.revoke(_cookie())
    if actor is not None:
        audit(get_store(), actor, action, object_type="user", object_id=actor.user_id)
    if reason:
        st.session_state["auth_message"] = reason


def _start_session(user) -> None:
    now = time.time()
    st.session_state[_KEY] = {"user_id": user.id, "username": user.username, "role": user.role,
                              "patient_id": user.patient_id, "started_at": now, "last_seen": now}
    media_guard.grant(_cookie(), ttl_s=POLICY.idle_timeout_s, session_id=_session_id())


def oidc_configured() -> bool:
    """True when the clinic configured an identity provider (an ``[auth]`` section in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def _oidc_login(store) -> None:
    """Sign in through the identity provider (st.login) and map its subject to a tracker account."""
    if not st.user.is_logged_in:
        st.button("Log in with the clinic's identity provider", on_click=st.login, type="primary")
        return
    try:
        user = authenticate_external(store, str(st.user.get("sub", "")))
    except AuthenticationFailed:
        st.error("Your clinic account is not linked to a tracker account (or it is disabled): "
                 "ask the administrator.")
        st.button("Sign out of the identity provider", on_click=st.logout)
    else:
        _start_session(user)
        st.rerun()


def login_page() -> None:
    """The login form (and, on a new installation, the form that creates the first administrator)."""
    store = get_store()
    st.title("Scalp progress tracker")
    message = st.session_state.pop("auth_message", None)
    if message:
        st.info(message)
    if oidc_configured() and not needs_first_admin(store):
        _oidc_login(store)
        st.caption("Or log in with a local account:")
    if needs_first_admin(store):
        st.subheader("First start: create the administrator account")
        st.caption("There is no account yet. The administrator manages clinician and patient accounts.")
        with st.form("first_admin"):
            username = st.text_input("Administrator user name")
            password = st.text_input("Password (at least 12 characters)", type="password")
            repeat = st.text_input("Repeat the password", type="password")
            if st.form_submit_button("Create administrator"):
                if password != repeat:
                    st.error("The two passwords differ.")
                else:
                    try:
                        user = create_first_admin(store, username=username, password=password)
                    except (TrackerError, ValueError) as exc:  # also: someone else created it first
                        st.error(str(exc))
                    else:
                        _start_session(user)
                        st.rerun()
        return
    with st.form("login"):
        username = st.text_input("User name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Log in", type="primary"):
            try:
                user = authenticate(store, username, password)
            except AuthenticationFailed as exc:
                st.error(str(exc))
            else:
                _start_session(user)
                st.rerun()


def logout_page() -> None:
    """A page that logs out (also of the identity provider) and returns to the login form."""
    logout(current_actor(), reason="You are logged out.", action="logout")
    if oidc_configured() and st.user.is_logged_in:
        st.logout()  # clears the provider's identity cookie and reruns
    st.rerun()
