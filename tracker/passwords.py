"""Passwords: the acceptance policy and argon2id hashing (DESIGN section 8, issue 6).

- Passwords are NFKC-normalised before they are checked, hashed or verified, so the same text typed
  with composed or decomposed characters gives the same result.
- :func:`check_password_policy` refuses short, low-variety and common passwords, including a common
  word decorated with digits, symbols or look-alike characters (``P@ssw0rd-2025``).
- Hashes are argon2id with :data:`HASH_PARAMETERS` (RFC 9106 low-memory profile: 64 MiB, 3 passes,
  4 lanes); :func:`needs_rehash` tells when a stored hash was made under other parameters.
- :func:`dummy_hash` gives a hash of a random secret with the current parameters, to verify against for
  unknown user names so that a login costs the same whether or not the name exists.

Accounts, logins and lockout are in :mod:`tracker.accounts`, which re-exports the public names here.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from tracker.errors import TrackerError

__all__ = [
    "HASH_PARAMETERS", "MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "PasswordRejected",
    "check_password_policy", "dummy_hash", "hash_password", "needs_rehash", "verify_password",
]

#: argon2id parameters of new hashes (RFC 9106 second recommendation: m=64 MiB, t=3, p=4).
HASH_PARAMETERS = profiles.RFC_9106_LOW_MEMORY
_HASHER = PasswordHasher.from_parameters(HASH_PARAMETERS)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def _words(text_block: str) -> frozenset[str]:
    return frozenset(text_block.split())


# Words that make a password guessable however many digits or symbols are added around them.
_COMMON_WORDS = _words("""
password passwort motdepasse contrasena senha qwerty qwertz azerty asdf asdfgh zxcvbn letmein welcome
admin administrator root login changeme secret iloveyou monkey dragon football baseball soccer hockey
sunshine princess shadow master superman batman trustno1 passw0rd p@ssw0rd p@ssword hello abc abcdef
starwars whatever freedom clinic doctor patient tracker hairloss scalp qazwsx welcome1 default test
""")
_LOOK_ALIKES = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s",
                                 "7": "t", "8": "b", "9": "g"})
# Frequent leaked passwords of 12+ characters that the word rule above does not catch.
_COMMON_PASSWORDS = _words("""
1q2w3e4r5t6y 1q2w3e4r5t6y7u8i qwertyuiopasdfgh qwertyuiop[] 1qaz2wsx3edc 1qaz2wsx3edc4rfv
zaq12wsxcde3 zaq1zaq1zaq1 qazwsxedcrfv abcdefghijkl abcdefghijklm abc123abc123 asdfghjklzxcv
iloveyouiloveyou mypassword123 thisismypassword correcthorsebatterystaple
""")


class PasswordRejected(TrackerError, ValueError):
    """A new password does not meet the policy (the message says why)."""


def _prepare(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password_policy(password: str, *, username: str | None = None) -> None:
    """Raise :class:`PasswordRejected` unless ``password`` is acceptable.

    At least :data:`MIN_PASSWORD_LENGTH` characters (after NFKC normalisation), at most
    :data:`MAX_PASSWORD_LENGTH`, at least 5 different characters, not the user name (nor containing it),
    and not a common password or a common word decorated with digits and symbols (``Password2024!``).
    """
    if not isinstance(password, str):
        raise PasswordRejected("the password must be text")
    folded = _prepare(password).casefold()
    if len(folded) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(folded) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    if len(set(folded)) < 5:
        raise PasswordRejected("the password repeats too few different characters")
    if username:
        name = username.strip().casefold()
        if folded == name or (len(name) >= 4 and name in folded):
            raise PasswordRejected("the password must not contain the user name")
    if folded in _COMMON_PASSWORDS or re.sub(r"\s+", "", folded) in _COMMON_PASSWORDS:
        raise PasswordRejected("this password is too common")
    if re.sub(r"[\W_]+", "", folded).isdigit():
        raise PasswordRejected("the password needs letters: digits and punctuation alone are guessable")
    core = re.sub(r"[\W\d_]+", "", folded)
    # "P@ssw0rd-2025": drop the digits and symbols around the word, undo look-alike characters inside it.
    inner = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", folded).translate(_LOOK_ALIKES)
    unleet = re.sub(r"[\W\d_]+", "", inner)
    if not core or {core, unleet} & _COMMON_WORDS or _is_repetition(core) or _is_repetition(unleet):
        raise PasswordRejected("this password is too common (a common word plus digits or symbols)")


def _is_repetition(core: str) -> bool:
    # "adminadmin", "qwertyqwerty": a common word repeated.
    for size in range(1, len(core) // 2 + 1):
        if len(core) % size == 0 and core[:size] * (len(core) // size) == core:
            return size < 4 or core[:size] in _COMMON_WORDS
    return False


def hash_password(password: str) -> str:
    """The argon2id hash (``$argon2id$...``) of ``password`` with :data:`HASH_PARAMETERS` (no policy)."""
    return _HASHER.hash(_prepare(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``; False for a wrong password or a corrupt hash."""
    try:
        return _HASHER.verify(stored_hash, _prepare(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when ``stored_hash`` was made with parameters other than the current ones."""
    return _HASHER.check_needs_rehash(stored_hash)


_DUMMY_HASHES: dict[tuple[int, ...], str] = {}


def dummy_hash() -> str:
    """A hash of a random secret with the current parameters: verified for unknown users (same cost)."""
    key = (_HASHER.time_cost, _HASHER.memory_cost, _HASHER.parallelism, _HASHER.hash_len, _HASHER.salt_len)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hash_password(secrets.token_urlsafe(24))
    return _DUMMY_HASHES[key]
