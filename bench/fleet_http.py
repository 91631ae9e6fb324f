"""A small HTTP/1.1 client on asyncio streams for bench/fleet.sh's helpers
(fleet_load.py, fleet_probe.py): keep-alive connections to loopback ports,
Content-Length and chunked bodies, nothing else. Standard library only."""

import asyncio
import time
from collections import deque


class HttpError(Exception):
    """A connection or protocol failure (not an HTTP status)."""


class Conn:
    """One keep-alive connection to 127.0.0.1:PORT, opened on first use and
    again after the server closed it."""

    def __init__(self, port):
        self.port = port
        self.reader = None
        self.writer = None
        self.used = False  # served a request already: a failure may be a stale keep-alive

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
        self.used = False

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.used = False

    async def _exchange(self, raw):
        if self.writer is None:
            await self._open()
        self.writer.write(raw)
        await self.writer.drain()
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            raise HttpError(f"connection closed before an answer ({len(e.partial)} bytes)") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers expected
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = await self.reader.read(-1)
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        else:
            self.used = True
        return status, body

    async def request(self, method, path, body=None, timeout=5.0):
        """(status, body bytes, time the answer was read, time.monotonic())."""
        payload = b"" if body is None else body
        raw = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            + (f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n" if body is not None else "")
            + "\r\n"
        ).encode() + payload
        for attempt in (0, 1):
            reused = self.used
            try:
                status, data = await asyncio.wait_for(self._exchange(raw), timeout)
                return status, data, time.monotonic()
            except (OSError, HttpError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                self.close()
                # A keep-alive connection the server had just closed: once more, fresh.
                if attempt == 0 and reused:
                    continue
                raise HttpError(str(e) or type(e).__name__) from None
            except asyncio.TimeoutError:
                self.close()
                raise HttpError(f"no answer in {timeout} s") from None
        raise HttpError("unreachable")


class Pool:
    """Keep-alive connections to one port: an idle one is reused, a new one
    opened when all are busy."""

    def __init__(self, port):
        self.port = port
        self.idle = deque()
        self.opened = 0

    async def request(self, method, path, body=None, timeout=5.0):
        if self.idle:
            conn = self.idle.pop()
        else:
            conn = Conn(self.port)
            self.opened += 1
        try:
            result = await conn.request(method, path, body, timeout)
        except HttpError:
            conn.close()
            raise
        self.idle.append(conn)
        return result

    def close(self):
        while self.idle:
            self.idle.pop().close()
