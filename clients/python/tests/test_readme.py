"""The README's Python blocks, run as written: the first is a test module of its own."""

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


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_example_runs_as_written(pytester):
    example = python_blocks()[0]
    assert "def test_client_survives_a_reset(cynic):" in example
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_the_readme_use_without_pytest_runs_as_written(cynic):
    without_pytest, error = python_blocks()[1:]
    exec(compile(without_pytest, "README.md (without pytest)", "exec"), {})
    exec(compile(error, "README.md (an error)", "exec"), {"cynic": cynic})
