"""The HTTP client for URLs a business gave us (webhook endpoints): public addresses only, one time limit for the
whole call, and failures told as a short category.

A read or connect timeout alone does not bound a call: a receiver trickling one byte a second never lets a
read time out, and would hold a sender's worker for as long as it likes. So every connect, write and read
inside `deadline(seconds)` gets only what is left of that one budget, and past it the call fails as a timeout.
What went wrong is stored and shown to the business as `failure(exc)`: "timeout", "HTTP 500", "refused:
internal address", never the exception's text (which names the addresses a name resolved to, inside ones too).
"""
from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore2
import httpx2

from nextslot.core.outbound import PrivateTarget, resolve

_deadline: ContextVar[float | None] = ContextVar("outbound_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Give every connect, write and read of the calls inside one shared time limit."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The timeout an operation may use now: its own, cut to what remains of the deadline; `expired` past it."""
    end = _deadline.get()
    if end is None:
        return timeout
    remaining = end - time.monotonic()
    if remaining <= 0:
        raise expired("the call's time limit has passed")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every operation is cut to the current deadline."""

    def __init__(self, stream: httpcore2.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                     left(timeout, httpcore2.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore2.SyncBackend):
    """httpcore's network layer, resolving the name itself and connecting only to an address it checked (unless
    private targets are allowed); TLS (SNI and the certificate check) and the Host header still use the name,
    above this layer. Every connection it makes keeps to the deadline."""

    def __init__(self, allow_private: bool):
        self._allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        if self._allow_private:
            stream = super().connect_tcp(host, port, left(timeout, httpcore2.ConnectTimeout), local_address,
                                         socket_options)
            return DeadlineStream(stream)
        try:
            records = resolve(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for *_, sockaddr in records:
            try:
                stream = super().connect_tcp(str(sockaddr[0]), port, left(timeout, httpcore2.ConnectTimeout),
                                             local_address, socket_options)
                return DeadlineStream(stream)
            except httpcore2.ConnectError as exc:  # the next checked address, as create_connection would
                last = exc
        raise last or httpcore2.ConnectError(f"could not connect to {host}")


def http_client(allow_private: bool, timeout: float) -> httpx2.Client:
    """An HTTP client that calls public addresses only (unless allowed), never follows redirects, reads no
    proxy from the environment, and keeps to `deadline()`."""
    transport = httpx2.HTTPTransport()
    # httpx takes no network backend of its own; its pool does, so the transport gets a pool built with ours
    transport._pool = httpcore2.ConnectionPool(ssl_context=httpx2.create_ssl_context(),
                                               network_backend=GuardedBackend(allow_private))
    return httpx2.Client(timeout=timeout, transport=transport, trust_env=False, follow_redirects=False)


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and every one behind it (raised from, during, or kept as a retry's reason)."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is f for f in found):
            continue
        found.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None) if isinstance(
            getattr(e, "reason", None), BaseException) else None]
        todo += [a for a in e.args if isinstance(a, BaseException)]
    return found


def failure(exc: BaseException) -> str:
    """Why an outgoing call failed, as a short category safe to store and show to the business."""
    chain = causes(exc)

    def was(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    if was(PrivateTarget) or any("internal address" in str(e) for e in chain):
        return "refused: internal address"
    if was(httpx2.TimeoutException, httpcore2.TimeoutException, TimeoutError, socket.timeout):
        return "timeout"
    if was(ConnectionRefusedError):
        return "connection refused"
    if was(socket.gaierror):
        return "host not found"
    if was(httpx2.InvalidURL, httpx2.UnsupportedProtocol, UnicodeError, ValueError):
        return "invalid url"
    if was(httpx2.ConnectError, httpcore2.ConnectError):
        return "connection failed"
    if was(httpx2.RemoteProtocolError, httpcore2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError,
           ConnectionError):
        return "connection dropped"
    return "request failed"
