"""The README's example, run as written: its first Python block is a test module of its own."""

import pathlib
import re
import textwrap

README = pathlib.Path(__file__).parent.parent / "README.md"

# The README's `postgres_port` is the reader's own fixture; here, a real TCP server that echoes.
CONFTEST = textwrap.dedent("""
    import socketserver
    import threading

    import pytest


    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(65536):
                self.request.sendall(data)


    @pytest.fixture
    def postgres_port():
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()
        server.server_close()
""")


def test_the_readme_example_runs_as_written(pytester):
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert "def test_client_survives_a_reset(cynic):" in example
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
