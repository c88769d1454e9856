"""Server-side sessions, login rate limiting and forms kept across a re-login.

All of it lives in the server's memory only: a seized disk holds no session ids, and a
restart logs everyone out. The browser's cookie is a random id; the server keeps who it
belongs to, its CSRF token and when it expires.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Session:
    id: str
    user: str
    csrf: str
    expires: float
    idle_until: float


@dataclass
class Sessions:
    lifetime: float = 8 * 3600  # absolute
    idle: float = 30 * 60  # since the last request
    _by_id: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self, user: str) -> Session:
        now = time.time()
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            csrf=secrets.token_urlsafe(32),
            expires=now + self.lifetime,
            idle_until=now + self.idle,
        )
        with self._lock:
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for an id, refreshed; None if unknown or expired."""
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if now >= session.expires or now >= session.idle_until:
                del self._by_id[session_id]
                return None
            session.idle_until = min(session.expires, now + self.idle)
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def drop_user(self, user: str) -> None:
        with self._lock:
            for sid in [s.id for s in self._by_id.values() if s.user == user]:
                del self._by_id[sid]

    def expire(self, session_id: str) -> None:
        """Make one session expire now, as time would (tests of what expiry does)."""
        with self._lock:
            if session_id in self._by_id:
                self._by_id[session_id].expires = 0


@dataclass
class RateLimit:
    """At most *attempts* failed logins per *window* seconds, per address and per name."""

    attempts: int = 5
    window: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        now = time.time()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def fail(self, *keys: str) -> None:
        now = time.time()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def clear(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


@dataclass
class PendingForms:
    """A form posted after its session expired: kept in memory (never on disk) so the
    user gets it back, filled in, once they log in again. Never applied unseen."""

    ttl: float = 15 * 60
    _forms: dict[str, tuple[float, str, list[tuple[str, str]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, path: str, fields: list[tuple[str, str]]) -> str:
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            for key in [k for k, v in self._forms.items() if v[0] < now]:
                del self._forms[key]
            self._forms[token] = (now + self.ttl, path, fields)
        return token

    def take(self, token: str | None) -> tuple[str, list[tuple[str, str]]] | None:
        with self._lock:
            entry = self._forms.pop(token or "", None)
        if entry is None or entry[0] < time.time():
            return None
        return entry[1], entry[2]
