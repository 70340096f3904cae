"""Receivers an attacker would run: raw loopback TCP servers that trickle, hang, redirect or pour out bytes."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

Behaviour = Callable[[socket.socket, "HostileServer"], None]


class HostileServer:
    """Accepts connections on loopback, reads the request head, then behaves as told; counts what it sent."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent = 0  # bytes the receiver managed to send before the caller hung up
        self.connections = 0
        self.finished = threading.Event()  # the behaviour ran to its end without the caller hanging up
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                self.read_body(conn, head)
                self.behaviour(conn, self)
                self.finished.set()
            except OSError:
                return  # the caller hung up: what a bounded caller does

    @staticmethod
    def read_body(conn: socket.socket, head: bytes) -> None:
        """Take the request's body too: closing with unread bytes would reset the connection and lose the answer."""
        top, _, body = head.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in top.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)


def trickle(response: bytes, every: float = 0.2) -> Behaviour:
    """A whole answer, one byte at a time: no single read ever waits long."""
    def behave(conn: socket.socket, server: HostileServer) -> None:
        for i in range(len(response)):
            if server.stopping.is_set():
                return
            server.send(conn, response[i:i + 1])
            time.sleep(every)
    return behave


def hang(conn: socket.socket, server: HostileServer) -> None:
    """Never answer."""
    server.stopping.wait(30)


def pour(conn: socket.socket, server: HostileServer, total: int = 1 << 30) -> None:
    """A 200 announcing a gigabyte, then as much of it as the caller will take."""
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % total)
    block = b"x" * 65536
    while server.sent < total and not server.stopping.is_set():
        server.send(conn, block)


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Behaviour:
    def behave(conn: socket.socket, server: HostileServer) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        server.send(conn, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return behave


def pour_chunked(conn: socket.socket, server: HostileServer, total: int = 1 << 30) -> None:
    """A 200 with no length at all: chunk after chunk until the caller hangs up."""
    server.send(conn, b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"<" * 65536 + b"\r\n"
    while server.sent < total and not server.stopping.is_set():
        server.send(conn, chunk)
