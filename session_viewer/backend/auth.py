"""Password checks and the failed-attempt limiter.

Passwords arrive in headers (``X-Backend-Password`` for everything, ``X-Session-Password`` for one
session), never in URLs, which end up in logs and browser history. Comparison is constant-time
over SHA-256 digests so neither content nor length leaks through timing. Failed attempts are
counted per client IP in a sliding window; once the limit is reached every attempt from that IP,
right or wrong, gets 429 until old failures age out, so guessing cannot continue at speed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

BACKEND_PASSWORD_HEADER = "X-Backend-Password"
SESSION_PASSWORD_HEADER = "X-Session-Password"


def passwords_match(given: str | None, expected: str | None) -> bool:
    """Constant-time equality; an empty expected password never matches anything."""
    if not given or not expected:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def generate_password() -> str:
    """A random password for a server started without ``BACKEND_PASSWORD`` (never a fixed default)."""
    return secrets.token_urlsafe(18)


class FailedAttemptLimiter:
    """Sliding-window count of failed password attempts per client.

    In memory, per process: enough for one viewer instance; behind several instances each has
    its own window (put a shared limiter in the reverse proxy if that matters). The number of
    tracked clients is capped so a flood of spoofed addresses cannot grow memory without bound.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _prune(self, client: str, now: float) -> deque[float] | None:
        attempts = self._failures.get(client)
        if attempts is None:
            return None
        while attempts and attempts[0] <= now - self.window_seconds:
            attempts.popleft()
        if not attempts:
            del self._failures[client]
            return None
        return attempts

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        with self._lock:
            now = self._clock()
            attempts = self._prune(client, now)
            if attempts is None or len(attempts) < self.max_failures:
                return None
            # The window frees up when the oldest failure that still counts ages out.
            oldest_counting = attempts[len(attempts) - self.max_failures]
            return max(1, math.ceil(oldest_counting + self.window_seconds - now))

    def record_failure(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            attempts = self._prune(client, now) or deque()
            attempts.append(now)
            self._failures[client] = attempts
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def failures(self, client: str) -> int:
        with self._lock:
            attempts = self._prune(client, self._clock())
            return len(attempts) if attempts else 0
