"""The CalDAV client's HTTP session, bounded: internal addresses refused (the shared guard, `core/outbound.py`),
one time limit for everything a connection does, and a cap on each answer's size.

A per-read timeout alone does not bound a sync: a server trickling a byte a second never lets a read time out.
So a watchdog shuts every socket of the session down when the time is up; a read blocked anywhere (TLS, the HTTP
parser, the CalDAV library) returns at once, and the sync fails as a timeout. An answer is read in chunks and
dropped past the cap (decompressed bytes are counted, so a small gzip bomb counts at its full size).
"""
from __future__ import annotations

import socket
import threading
from typing import Any

import niquests
from niquests.packages.urllib3.contrib.resolver.system import SystemResolver

from nextslot.core.outbound import AddrInfo, public_addresses
from nextslot.core.outbound_http import failure

TIME_LIMIT = 120.0  # seconds for a whole sync or write: every request of one connection
MAX_ANSWER_BYTES = 10 * 1024 * 1024  # one answer (a multiget of 100 events is far less)


class AnswerTooLarge(niquests.exceptions.RequestException):
    """The server's answer passed the size cap; it was not read further."""


class TimeUp(TimeoutError):
    """The connection's time limit passed."""


class Watchdog:
    """Shuts every socket it was given down once `seconds` have passed since it started."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True
        self._timer.start()

    def track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            if self.expired:
                sock.close()
                raise TimeUp("the calendar's time limit has passed")
            self._sockets.append(sock)
        return sock

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed already

    def cancel(self) -> None:
        self._timer.cancel()


class GuardedResolver(SystemResolver):  # type: ignore[misc]  # niquests ships no types for it
    """The resolver niquests connects through: every address checked (unless private targets are allowed), and
    the connection goes to the addresses returned here, so what was checked is what is called; every socket is
    handed to the watchdog."""

    def __init__(self, *patterns: str, allow_private: bool = False, watchdog: Watchdog | None = None,
                 **kwargs: Any):
        super().__init__(*patterns, **kwargs)
        self.allow_private, self.watchdog = allow_private, watchdog

    def getaddrinfo(self, host: Any, port: Any, family: Any, type: Any, proto: int = 0, flags: int = 0, *,
                    quic_upgrade_via_dns_rr: bool = False) -> list[AddrInfo]:
        records = super().getaddrinfo(host, port, family, type, proto, flags,
                                      quic_upgrade_via_dns_rr=quic_upgrade_via_dns_rr)
        if self.allow_private:
            return records
        name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        return public_addresses(name, port, records)

    def create_connection(self, *args: Any, **kwargs: Any) -> socket.socket:
        sock = super().create_connection(*args, **kwargs)
        return self.watchdog.track(sock) if self.watchdog else sock


class BoundedSession(niquests.Session):
    """A session whose answers are read up to `max_bytes`, through a `GuardedResolver`; no proxy from the
    environment."""

    def __init__(self, allow_private: bool = False, time_limit: float = TIME_LIMIT,
                 max_bytes: int = MAX_ANSWER_BYTES):
        self.watchdog = Watchdog(time_limit)
        super().__init__(resolver=GuardedResolver(allow_private=allow_private, watchdog=self.watchdog))
        self.trust_env, self.max_bytes = False, max_bytes

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if self.watchdog.expired:
            raise TimeUp("the calendar's time limit has passed")
        kwargs["stream"] = True
        try:
            response = super().request(method, url, *args, **kwargs)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                response.close()
                raise AnswerTooLarge(f"the answer is over {self.max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > self.max_bytes:
                    response.close()
                    raise AnswerTooLarge(f"the answer is over {self.max_bytes} bytes")
        except niquests.exceptions.RequestException as exc:
            if self.watchdog.expired:  # the watchdog cut it: say so, not "connection reset"
                raise TimeUp("the calendar's time limit has passed") from exc
            raise
        response._content, response._content_consumed = bytes(body), True
        return response

    def close(self) -> None:
        self.watchdog.cancel()
        super().close()


def calendar_failure(error: BaseException) -> str:
    """What the business's staff see of a failed calendar call: a short category for a network failure (its text
    would name addresses), the server's own complaint otherwise."""
    if isinstance(error, AnswerTooLarge):
        return f"answer too large (over {MAX_ANSWER_BYTES // (1024 * 1024)} MB)"
    if isinstance(error, (TimeUp, niquests.exceptions.Timeout)):
        return "timeout"
    if isinstance(error, (OSError, niquests.exceptions.RequestException)):
        return failure(error)
    return f"{type(error).__name__}: {error}"
