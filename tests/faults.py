"""A fault proxy: a real HTTP proxy on 127.0.0.1 in front of a storage server (moto's S3).

``FaultProxy(upstream)`` forwards every request to ``upstream`` and its answer back, until
told otherwise (``mode``):

* ``"pass"``: a faithful proxy;
* ``"lose_delete_reply"``: a DeleteObjects request (``POST /<bucket>?delete``) is forwarded
  and fully answered by the server, then the client's connection is reset instead of the
  answer being returned: the objects are gone, the client only sees a dropped connection;
* ``"refuse"``: every connection is reset before anything is forwarded (an outage).

Independently of ``mode``, ``fail_puts`` PUTs (then every later one is forwarded) are not
forwarded: their body is read, then the connection is reset (``put_failure = "reset"``,
a network failure mid-upload) or answered ``503`` with ``Retry-After: 0`` (``"busy"``).

It runs in a daemon thread of the test process (``start``/``stop``); the backend under test
points its ``endpoint_url`` at ``proxy.endpoint``, while the test's own admin client talks to
the server directly. ``forwarded`` counts what reached the server, by ``"METHOD query"``.
"""

from __future__ import annotations

import collections
import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: Request headers not forwarded as they are (hop-by-hop, or re-sent by http.client).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class FaultProxy:
    """A proxy in front of ``upstream`` (``http://host:port``) that can lose answers."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.mode = "pass"
        self.fail_puts = 0
        self.put_failure = "reset"
        self.failed_puts: list[str] = []
        self._lock = threading.Lock()
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take_put_failure(self, path: str) -> bool:
        """True when this PUT is one of the ``fail_puts`` to fail (and counts it)."""
        with self._lock:
            if self.fail_puts <= 0:
                return False
            self.fail_puts -= 1
            self.failed_puts.append(path)
            return True

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects

            def log_message(self, *args):  # quiet
                pass

            def reset(self) -> None:
                """Close the connection with a TCP reset: the client sees no answer."""
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True

            def forward(self) -> None:
                if proxy.mode == "refuse":
                    self.reset()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "PUT" and proxy.take_put_failure(self.path):
                    if proxy.put_failure == "reset":
                        self.reset()
                        return
                    self.send_response_only(503, "Service Unavailable")
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.endheaders(body or None)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                query = self.path.partition("?")[2]
                proxy.forwarded[f"{self.command} {query}"] += 1
                deleting = self.command == "POST" and "delete" in query.split("&")
                if proxy.mode == "lose_delete_reply" and deleting:
                    self.reset()  # the server did the work; its answer is lost
                    return
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        return Handler
