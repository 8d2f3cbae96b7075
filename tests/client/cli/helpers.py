"""Helpers of the CLI tests: the ``ckpt`` executable, an error check, a recording proxy."""

import http.client
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

#: The installed ``ckpt`` entry point (``pip install -e .``).
CKPT = Path(sys.executable).with_name("ckpt")


def assert_one_line_error(result, *words):
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ckpt: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


class RecordingProxy:
    """An HTTP proxy in front of the live server that records request headers and can cut
    the first ``cut`` download responses off after ``cut_after`` body bytes."""

    def __init__(self, upstream: str, cut: int = 0, cut_after: int = 0):
        self.upstream = urlsplit(upstream)
        self.cut = cut
        self.cut_after = cut_after
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.forward(self, "GET")

            def do_PUT(self):
                proxy.forward(self, "PUT")

            def do_PATCH(self):
                proxy.forward(self, "PATCH")

            def do_POST(self):
                proxy.forward(self, "POST")

            def do_DELETE(self):
                proxy.forward(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, handler, method):
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        with self.lock:
            self.requests.append((handler.path, headers))
            cut = "/download" in handler.path and self.cut > 0
            if cut:
                self.cut -= 1
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
        connection.request(method, handler.path, body=body, headers=headers)
        response = connection.getresponse()
        handler.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "server", "date"):
                handler.send_header(key, value)
        data = response.read()
        if "Content-Length" not in response.headers:
            handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data[: self.cut_after] if cut else data)
        handler.wfile.flush()
        handler.close_connection = True
        connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def download_ranges(self) -> list[str | None]:
        return [h.get("Range") for path, h in self.requests if "/download" in path]
