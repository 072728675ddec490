"""Login through the clinic's identity provider (OIDC via st.login): subject -> account mapping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tracker.accounts import create_user, disable_user
from tracker.login import AuthenticationFailed, authenticate_external
from tracker.services import Actor
from tracker.store import AuditEvent

SYSTEM = Actor.system("test")


@pytest.fixture
def linked(store):
    return create_user(store, username="dr.idp", role="clinician", external_identity="00u1abcd-sub", actor=SYSTEM)


def test_mapped_subject_logs_in_with_the_account_role(store, linked):
    user = authenticate_external(store, "00u1abcd-sub")
    assert (user.id, user.role) == (linked.id, "clinician")
    with store.session() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (event.action, event.username, event.details["method"]) == ("login", "dr.idp", "oidc")


@pytest.mark.parametrize("subject", ["someone-else", "", "   ", None])
def test_unmapped_subject_is_refused_and_audited(store, linked, subject):
    with pytest.raises(AuthenticationFailed):
        authenticate_external(store, subject)
    with store.session() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == "login_failed" and event.details["reason"] == "unknown external identity"


def test_disabled_account_is_refused(store, linked):
    create_user(store, username="boss", role="admin", password="a long enough passphrase 42", actor=SYSTEM)
    disable_user(store, "dr.idp", actor=SYSTEM)
    with pytest.raises(AuthenticationFailed):
        authenticate_external(store, "00u1abcd-sub")
