"""Password policy (tracker.passwords); hashing and re-hashing through logins are in test_accounts.py."""

from __future__ import annotations

import pytest

from tracker.passwords import PasswordRejected, check_password_policy

GOOD = "violet-harbour-lantern-92"
OTHER_GOOD = "quiet Otter sails north 7"


@pytest.mark.parametrize(("password", "why"), [
    ("Sh0rt-pass!", "too short"),
    ("password1234", "common"),
    ("Welcome2024!!", "common"),
    ("P@ssw0rd-2025", "common"),
    ("adminadminadmin", "common"),
    ("123456789012", "letters"),
    ("2024-01-31 12:00", "letters"),
    ("aaaaaaaaaaaaaaaa", "different characters"),
    ("1q2w3e4r5t6y", "common"),
    ("correct horse battery staple", "common"),
    ("dr.frankenstein-rules", "user name"),
    ("x" * 1025 + "abcde", "longer"),
])
def test_policy_rejects_weak_passwords(password, why):
    with pytest.raises(PasswordRejected, match=why):
        check_password_policy(password, username="dr.frankenstein")


@pytest.mark.parametrize("password", [GOOD, OTHER_GOOD, "Fünf Bären tanzen leise", "k7#Qm!2vLp9@"])
def test_policy_accepts_strong_passwords(password):
    check_password_policy(password, username="dr.frankenstein")
