"""Whether an ASGI app has started its response: until then an error can still be answered, after it only the
connection can be closed."""
from __future__ import annotations

from starlette.types import Message, Send


class ResponseWatch:
    """A `send` that notes the response's start, passed to the app in place of the server's own."""

    def __init__(self, send: Send):
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)
