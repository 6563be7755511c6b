"""Staff login: scrypt password hashes in a file outside git, and signed session cookies.

The users file has one ``name:hash`` line per member of staff, written by ``machimori web passwd``.
A session cookie is ``base64(name|expiry|session id).hmac``: HttpOnly, SameSite=Strict, Secure
unless the config says otherwise. Logging out revokes the session id in the database, so the old
cookie stops working at once on every web process, not only in the browser that logged out.
Failed logins are throttled per client address. Nothing here logs a password, a hash or a
cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.api.keyfile import KeyFile

log = logging.getLogger(__name__)
COOKIE = "machimori_staff"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
USER_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_FAILURES = 10  # per client address per window
FAILURE_WINDOW_S = 600.0


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_user_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= USER_NAME_CHARS:
        raise ValueError("user name: 1-64 chars of A-Z a-z 0-9 . _ -")
    return name


def set_password(users_file: Path, name: str, password: str) -> None:
    """Add or replace one user's line; the file is created mode 0600."""
    check_user_name(name)
    lines = users_file.read_text(encoding="utf-8").splitlines() if users_file.exists() else []
    kept = [line for line in lines if line.split(":", 1)[0] != name]
    users_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(users_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write("\n".join([*kept, f"{name}:{hash_password(password)}"]) + "\n")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Revocations(Protocol):
    """Where logged-out sessions are remembered (the store's database)."""

    def revoke_session(self, sid: str, expires_ms: int, now_ms: int) -> None: ...
    def session_revoked(self, sid: str) -> bool: ...


@dataclass(frozen=True)
class Session:
    user: str
    expires: int  # Unix seconds
    sid: str


class StaffAuth:
    """Checks passwords against the users file and issues, verifies and revokes session
    cookies."""

    def __init__(
        self,
        users_file: Path | None,
        secret: bytes | None = None,
        session_hours: float = 12.0,
        secure_cookie: bool = True,
        revocations: Revocations | None = None,
    ) -> None:
        self.users_file = users_file
        self.secret = secret or secrets.token_bytes(32)
        self.session_s = int(session_hours * 3600)
        self.secure_cookie = secure_cookie
        self._users = KeyFile(users_file, "staff users file")
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self.revocations = revocations

    @classmethod
    def from_files(
        cls,
        users_file: Path | None,
        secret_file: Path | None,
        session_hours: float,
        secure_cookie: bool,
        revocations: Revocations | None = None,
    ) -> StaffAuth:
        secret = secret_file.read_bytes().strip() if secret_file is not None else None
        if secret is not None and len(secret) < 32:
            raise ValueError(f"{secret_file}: a session secret needs 32 or more bytes")
        return cls(users_file, secret, session_hours, secure_cookie, revocations)

    def _current_users(self) -> dict[str, str]:
        """The users file, re-read when it changed, so adding staff needs no restart."""
        return self._users.entries()

    def throttled(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            while failures and now - failures[0] > FAILURE_WINDOW_S:
                failures.popleft()
            return bool(failures) and len(failures) >= MAX_FAILURES

    def login(self, name: str, password: str, client: str) -> str | None:
        """A session cookie value for a right name and password, else None (and counted)."""
        stored = self._current_users().get(name)
        # a made-up hash keeps the time the same whether or not the user exists
        ok = verify_password(password, stored or _DUMMY_HASH) and stored is not None
        if ok:
            log.info("staff login", extra={"fields": {"user": name}})
            return self._issue(name)
        with self._lock:
            self._failures.setdefault(client, deque()).append(time.monotonic())
        log.warning("staff login failed", extra={"fields": {"client": client}})
        return None

    def _issue(self, name: str) -> str:
        sid = secrets.token_urlsafe(16)
        body = _b64(f"{name}|{int(time.time()) + self.session_s}|{sid}".encode())
        return f"{body}.{self._sign(body)}"

    def _sign(self, body: str) -> str:
        raw = body.encode("utf-8", "replace")
        return _b64(hmac.new(self.secret, raw, hashlib.sha256).digest())

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries if it is genuine, unexpired and not logged out."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        expected = self._sign(body).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected):
            return None
        try:
            name, expiry, sid = _unb64(body).decode().rsplit("|", 2)
            session = Session(name, int(expiry), sid)
        except (ValueError, UnicodeDecodeError):
            return None
        if session.expires < time.time():
            return None
        if self.revocations is not None and self.revocations.session_revoked(sid):
            return None
        return session

    def user(self, cookie: str | None) -> str | None:
        """The member of staff a cookie belongs to, if its session is live and the user is
        still in the users file."""
        session = self.session(cookie)
        return session.user if session and session.user in self._current_users() else None

    def logout(self, cookie: str | None) -> None:
        """Revoke the cookie's session for good (until it would have expired)."""
        session = self.session(cookie)
        if session is None:
            return
        if self.revocations is None:
            raise RuntimeError("no revocation store: a logged-out cookie would still work")
        now_ms = int(time.time() * 1000)
        self.revocations.revoke_session(session.sid, session.expires * 1000, now_ms)
        log.info("staff logout", extra={"fields": {"user": session.user}})


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
