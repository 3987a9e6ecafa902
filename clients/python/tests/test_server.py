"""Starting and stopping cynic: the fixture in a pytest of its own (pytester), and CynicServer."""

import os
import stat
import textwrap
import time

import pytest

from cynic_client import Cynic, CynicError, CynicServer, CynicServerError, find_binary


@pytest.fixture
def cynic_binary():
    return find_binary()


def wrapper(tmp_path, line):
    """An executable script that runs the real cynic as `line` says, with `$REAL` for its path."""
    script = tmp_path / "cynic-wrapper"
    script.write_text(f"#!/bin/sh\n{line}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_fixture_starts_cynic_once_and_gives_each_test_a_clean_one(pytester, tmp_path):
    seen = tmp_path / "seen"
    pytester.makepyfile(textwrap.dedent(f"""
        def record(server):
            with open({str(seen)!r}, "a") as f:
                f.write(f"{{server.process.pid}} {{server.api}}\\n")

        def test_leaves_a_service_and_fails(cynic, cynic_server):
            record(cynic_server)
            cynic.service("reset", name="left-behind")
            assert False, "a failing test's services go too"

        def test_starts_with_none(cynic, cynic_server):
            record(cynic_server)
            assert cynic.services() == []
    """))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    [first, second] = seen.read_text().splitlines()
    assert first == second  # one cynic for the session
    pid, api = first.split()
    assert process_gone(int(pid))
    with pytest.raises(OSError):
        Cynic(api, timeout=5).services()


def test_without_a_binary_the_fixture_says_to_set_cynic_or_path(pytester, monkeypatch, tmp_path):
    monkeypatch.delenv("CYNIC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    pytester.makepyfile("def test_needs_cynic(cynic):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cynic not found: set CYNIC to the cynic binary*or put cynic on PATH*"])


def test_a_cynic_that_is_not_executable_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("CYNIC", str(tmp_path / "nowhere"))
    with pytest.raises(CynicServerError, match=r"CYNIC=.*nowhere: not an executable file"):
        find_binary()


def test_a_cynic_that_never_prints_its_start_line_times_out_with_its_output(tmp_path, cynic_binary):
    # The real cynic, without --json: it says where it listens in prose only.
    binary = wrapper(tmp_path, f'exec "{cynic_binary}" serve reset --port 0 --no-api')
    server = CynicServer(binary, start_timeout=2)
    with pytest.raises(CynicServerError) as raised:
        server.start()
    message = str(raised.value)
    assert message.startswith(f"{binary} serve --api 127.0.0.1:0 --json: did not print "
                              "its JSON start line within 2 s; its output:")
    assert "service reset: behaviour reset, listening on 127.0.0.1:" in message
    assert server.process.poll() is not None  # stopped


def test_a_start_line_without_a_control_api_is_reported_at_once(cynic_binary):
    args = ("serve", "reset", "--port", "0", "--no-api")
    server = CynicServer(cynic_binary, args=args)
    started = time.monotonic()
    with pytest.raises(CynicServerError) as raised:
        server.start()
    assert time.monotonic() - started < 20
    assert 'its start line names no control API ("control_api": null)' in str(raised.value)
    # The line it read names the service and the port it bound.
    [service] = server.start_line["services"]
    assert service["name"] == "reset" and service["port"] > 0
    assert server.process.poll() is not None  # stopped


def test_the_start_line_is_kept(cynic_binary):
    with CynicServer(cynic_binary) as server:
        assert server.start_line["control_api"] == server.api
        assert server.start_line["services"] == []
        assert server.start_line["pid"] == server.process.pid


def test_a_cynic_that_exits_at_start_is_reported_with_its_output(tmp_path, cynic_binary):
    binary = wrapper(tmp_path, f'exec "{cynic_binary}" "$@" --no-such-flag')
    with pytest.raises(CynicServerError) as raised:
        CynicServer(binary).start()
    message = str(raised.value)
    assert "exited with status" in message and "before its control API listened" in message
    assert "no-such-flag" in message


def test_a_cynic_that_dies_during_the_session_fails_the_next_test_with_its_output(pytester):
    pytester.makepyfile(textwrap.dedent("""
        def test_kills_it(cynic_server):
            cynic_server.process.kill()
            cynic_server.process.wait(10)

        def test_finds_it_dead(cynic):
            pass
    """))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*serve --api 127.0.0.1:0 --json: died (status -9); its output:*",
                                 '*"control_api":"http://127.0.0.1:*'])


def test_stop_ends_cynic_with_sigterm(cynic_binary):
    server = CynicServer(cynic_binary).start()
    assert server.client().services() == []
    server.stop()
    assert server.process.returncode == 0  # cynic's own clean exit on SIGTERM, not a SIGKILL
    server.stop()  # once stopped, nothing to do


def test_a_token_is_sent_as_a_bearer(cynic_binary):
    args = ("serve", "--api", "127.0.0.1:0", "--api-token", "s3cret")
    with CynicServer(cynic_binary, args=args) as server:
        with pytest.raises(CynicError) as raised:
            server.client().services()
        assert raised.value.status == 401
        assert server.client(token="s3cret").services() == []
