"""What the tests share: pytester (for the fixture tested in a pytest of its own), and a small
real HTTP server to put a proxy in front of. The `cynic` fixture itself comes from the installed
package, as it does for its users."""

import http.server
import threading

import pytest

pytest_plugins = ["pytester"]


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from upstream\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def upstream():
    """`HOST:PORT` of an http.server answering every GET with `hello from upstream`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
