"""A small webhook receiver: one thread, one connection at a time, a listen backlog of one."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
HEADERS_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Arrival:
    """One request the small receiver read in full (and then answered)."""

    webhook_id: str
    at: float


class SmallReceiver:
    """Accept, read the request, answer 200 with `Connection: close`, close; then the next connection.

    Everything beyond `backlog` waiting connections is left to the kernel (a full accept
    queue drops SYNs): what a modest server behind no load balancer does when flooded.
    Use as a context manager; the serving thread is stopped and joined on exit.
    """

    def __init__(self, backlog: int = 1) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(backlog)
        self._listener.settimeout(0.1)  # accept() wakes up to notice a stop
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        self._thread = threading.Thread(target=self._serve, name="small-receiver", daemon=True)

    def __enter__(self) -> SmallReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        assert not self._thread.is_alive(), "the small receiver's thread did not stop"

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def arrivals(self) -> list[Arrival]:
        """Return a snapshot of the requests read so far."""
        with self._lock:
            return list(self._arrivals)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the client gave up (timeout, reset): on to the next connection

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)  # a client that connects and sends nothing must not stop the server for ever
        data = b""
        while HEADERS_END not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(HEADERS_END)
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])
        )
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        with self._lock:
            self._arrivals.append(Arrival(headers.get("webhook-id", ""), time.time()))
        conn.sendall(RESPONSE)
