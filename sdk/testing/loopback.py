"""HTTP plumbing the emulated vendor servers (`openai_server`, `vertex_server`) share.

`LoopbackServer` is the lifecycle part: it serves a handler class, bound to the fake as its
`fake` attribute, on a `ThreadingHTTPServer` in a daemon thread, stops it, makes the fake a
context manager (`with Fake() as srv:` calls `start()` / `stop()`) and, for the command-line
mode, serves until Ctrl-C. `FakeHandler` is the handler base: HTTP/1.1 keep-alive, no request
logging, TCP_NODELAY, reading the request body, answering with a body, and dropping a
connection unanswered (a lost response).
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable


class FakeHandler(BaseHTTPRequestHandler):
    """Request handler base of the fakes; `fake` is the server object it answers for."""

    fake: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_body(self) -> bytes:
        """The request body (Content-Length bytes; empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def drop(self) -> None:
        """Close the connection without answering: the request was handled, the client never
        hears of it."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def answer(self, status: int, data: bytes, content_type: str,
               headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send `status` with Content-Type, Content-Length, then `headers`, then `data`."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


class LoopbackServer:
    """Lifecycle base of the fakes. A subclass defines `start()` (calling `_serve_http`) and
    `stop()` (calling `_close_http`)."""

    _httpd: ThreadingHTTPServer | None = None

    def _serve_http(self, host: str, port: int, handler: type[FakeHandler],
                    thread_name: str) -> threading.Thread:
        """Serve `handler`, bound to this fake, on (host, port) in a started daemon thread."""
        bound = type("Handler", (handler,), {"fake": self})
        httpd = ThreadingHTTPServer((host, port), bound)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=thread_name, daemon=True)
        thread.start()
        return thread

    def _close_http(self) -> None:
        """Stop serving and close the listening socket (nothing when not started)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def serve_until_interrupted(self) -> None:
        """Keep the started fake serving until Ctrl-C, then stop it (the command-line mode)."""
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
