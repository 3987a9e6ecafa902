"""The client against the real cynic, through the `cynic` fixture as a user writes it."""

import re
import socket
import time
from datetime import datetime, timedelta

import pytest
import requests

from cynic_client import CynicError

# The latency a shaper adds, and what a request through a proxy without one stays under: far
# apart, for a loaded 2-core machine.
SLOW = 0.3
FAST = 0.25


def request_time(url):
    started = time.monotonic()
    answer = requests.get(url, timeout=10)
    took = time.monotonic() - started
    assert answer.status_code == 200
    assert answer.text == "hello from upstream\n"
    return took


def assert_slow(url):
    assert request_time(url) >= SLOW - 0.005  # the clocks' own granularity, no more


def assert_fast(url):
    # The best of three: one request may meet a busy machine, three in a row should not.
    assert min(request_time(url) for _ in range(3)) < FAST


def test_a_reset_service_resets_a_raw_socket_and_its_event_says_so(cynic):
    service = cynic.service("reset")
    with socket.create_connection(service.address, timeout=10) as s:
        s.sendall(b"hello")
        try:
            reply = s.recv(1024)
        except ConnectionResetError:
            reply = b""
        assert reply == b""
    [event] = service.events(wait=5)
    assert (event["service"], event["behaviour"], event["end"]) == (service.name, "reset", "reset")
    assert event["client"]["bytes_in"] == 5


def test_a_service_shows_where_it_listens(cynic):
    service = cynic.service("http-json")
    host, port = service.address
    assert (host, service.host) == ("127.0.0.1", "127.0.0.1")
    assert port == service.port and port > 0
    assert service.url == f"http://127.0.0.1:{port}"
    assert service.listen == f"127.0.0.1:{port}"


def test_names_are_made_unique_unless_given(cynic):
    first, second = cynic.service("reset"), cynic.service("reset")
    assert re.fullmatch(r"reset-[0-9a-f]{6}", first.name)
    assert first.name != second.name
    assert cynic.service("reset", name="the-reset").name == "the-reset"


def test_an_http_json_service_answers_requests(cynic):
    service = cynic.service("http-json")
    answer = requests.get(service.url, timeout=10)
    assert answer.json() == {"message": "Hello, World!"}


def test_services_are_listed_read_and_deleted(cynic):
    json_service = cynic.service("http-json")
    reset = cynic.service("reset", wait_ms=0)
    assert [service.name for service in cynic.services()] == [json_service.name, reset.name]
    assert cynic.get(reset.name).parameters == {"wait_ms": "0"}
    reset.delete()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(reset.address, timeout=5).close()
    with pytest.raises(CynicError) as raised:
        cynic.get(reset.name)
    assert raised.value.status == 404
    assert [service.name for service in cynic.services()] == [json_service.name]


def test_api_errors_raise_cynic_error_with_status_message_and_field(cynic):
    with pytest.raises(CynicError) as raised:
        cynic.service("rest")
    error = raised.value
    assert (error.status, error.field) == (400, "behaviour")
    assert "unknown behaviour 'rest'" in error.message
    assert str(error).startswith("POST /services: 400 ")
    assert str(error).endswith(" (field: behaviour)")

    cynic.service("reset", name="taken")
    with pytest.raises(CynicError) as raised:
        cynic.service("reset", name="taken")
    assert raised.value.status == 409

    with pytest.raises(CynicError) as raised:
        cynic.service("reset", wait_ms="soon")
    assert raised.value.status == 400
    assert "wait_ms" in (raised.value.field or "")


def test_set_changes_the_behaviour_or_some_parameters(cynic, upstream):
    service = cynic.service("reset")
    service.set(behaviour="http-json")
    assert service.behaviour == "http-json"
    assert requests.get(service.url, timeout=10).json() == {"message": "Hello, World!"}

    proxy = cynic.proxy(upstream=upstream)
    proxy.set(unreachable="reset")
    assert proxy.parameters == {"upstream": upstream, "unreachable": "reset"}
    assert cynic.get(proxy.name).parameters == proxy.parameters

    proxy.update(parameters={"upstream": upstream})
    assert proxy.parameters == {"upstream": upstream}
    assert proxy.update(seed=7).data["seed"] == 7


def test_a_disabled_service_refuses_connections_until_enabled(cynic):
    service = cynic.service("http-json")
    service.disable()
    assert service.data["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(service.address, timeout=5).close()
    service.enable()
    assert requests.get(service.url, timeout=10).json() == {"message": "Hello, World!"}


def test_a_proxy_relays_to_its_upstream(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    assert proxy.behaviour == "proxy"
    assert request_time(proxy.url) < 10
    event = proxy.wait_for_event(timeout=10)
    assert event["upstream"]["connections"] == 1
    assert event["upstream"]["bytes_in"] == event["client"]["bytes_out"] > 0


def test_a_shaper_slows_requests_inside_its_block_and_not_after(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    assert_fast(proxy.url)
    with proxy.shaper("latency", ms=300) as shaper:
        assert shaper.name == "latency"
        assert [s["name"] for s in proxy.shapers()] == ["latency"]
        assert_slow(proxy.url)
    assert proxy.shapers() == []
    assert_fast(proxy.url)


def test_a_shaper_is_removed_when_its_block_raises(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    with pytest.raises(RuntimeError, match="the test's own"):
        with proxy.shaper("latency", ms=300):
            assert_slow(proxy.url)
            raise RuntimeError("the test's own")
    assert proxy.shapers() == []
    assert_fast(proxy.url)


def test_a_shaper_added_by_a_plain_call_stays_until_removed(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    shaper = proxy.shaper("latency", direction="upstream", probability=1.0, named="slow-requests",
                          ms=300)
    [shown] = proxy.shapers()
    assert (shown["name"], shown["shaper"], shown["direction"]) == ("slow-requests", "latency", "upstream")
    assert shown["parameters"]["ms"] == "300"
    assert_slow(proxy.url)
    assert_slow(proxy.url)
    shaper.remove()
    shaper.remove()  # already gone: nothing to do
    assert_fast(proxy.url)


def test_a_toxic_slows_requests_inside_its_block_and_not_after(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    with proxy.toxic("latency", latency=300) as toxic:
        assert toxic.name == "latency_downstream"
        [shown] = proxy.toxics()
        assert (shown["type"], shown["stream"], shown["attributes"]["latency"]) == ("latency", "downstream", 300)
        [shaper] = proxy.shapers()  # a toxic is a shaper
        assert shaper["shaper"] == "latency"
        assert_slow(proxy.url)
    assert proxy.toxics() == []
    assert proxy.shapers() == []
    assert_fast(proxy.url)


def test_an_upstream_toxic_is_removed_when_its_block_raises(cynic, upstream):
    proxy = cynic.proxy(upstream=upstream)
    with pytest.raises(RuntimeError, match="the test's own"):
        with proxy.toxic("latency", latency=300, stream="upstream", name="slow-upstream") as toxic:
            assert toxic.name == "slow-upstream"
            assert proxy.toxics()[0]["stream"] == "upstream"
            assert_slow(proxy.url)
            raise RuntimeError("the test's own")
    assert proxy.toxics() == []
    assert_fast(proxy.url)


def test_events_are_read_by_service_id_time_and_count(cynic):
    started = datetime.now() - timedelta(seconds=1)
    service = cynic.service("http-json")
    other = cynic.service("http-json")
    for url in (service.url, other.url, service.url):
        requests.get(url, timeout=10)
    first = service.wait_for_event(timeout=10)
    second = service.wait_for_event(after=first["id"], timeout=10)
    assert second["id"] > first["id"]

    events = cynic.events(service=service.name)
    assert [event["id"] for event in events] == [first["id"], second["id"]]
    assert events.last_id >= second["id"]
    assert [event["id"] for event in cynic.events(service=service.name, limit=1)] == [second["id"]]
    assert [event["id"] for event in service.events(after=first["id"])] == [second["id"]]
    assert len(service.events(since=started)) == 2
    assert service.events(since=datetime.now() + timedelta(hours=1)) == []

    assert cynic.wait_for_event(lambda event: event["service"] == other.name)["service"] == other.name
    assert cynic.wait_for_event(service=service.name, end=second["end"], after=first["id"]) == second


def test_waiting_for_events_is_bounded(cynic):
    service = cynic.service("http-json")
    started = time.monotonic()
    assert service.events(wait=1) == []
    assert 0.9 <= time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"no event of service '{service.name}' matched"):
        service.wait_for_event(timeout=1.5)
    assert 1.4 <= time.monotonic() - started < 6


def test_plugins_are_listed_with_the_files_refused(cynic):
    plugins = cynic.plugins()
    names = {plugin["name"] for plugin in plugins}
    assert {"reset", "http-json", "proxy", "latency"} <= names
    assert isinstance(plugins.refused, list)


def test_metrics_count_a_service_s_connections(cynic):
    service = cynic.service("http-json")
    requests.get(service.url, timeout=10)
    service.wait_for_event(timeout=10)
    assert f'service="{service.name}"' in cynic.metrics()


def test_cynic_output_is_drained_so_it_never_blocks_on_a_full_pipe(cynic, cynic_server):
    # Each service made and removed is two lines of cynic's log, some 200 bytes: 700 of them
    # overflow the 64 KiB of a pipe nobody reads, and cynic would stop in its next write.
    started = time.monotonic()
    for _ in range(700):
        service = cynic.service("reset")
        service.delete()
    assert time.monotonic() - started < 60
    # The reader threads take the last line a moment after cynic writes it.
    deadline = time.monotonic() + 10
    while not any(f"service {service.name} removed" in line for line in cynic_server.output()):
        assert time.monotonic() < deadline, cynic_server.output()[-5:]
        time.sleep(0.05)


def test_a_tls_service_passes_a_client_trusting_the_ca_and_each_profile_fails_for_its_reason(cynic):
    valid = cynic.service("http-json", tls="valid")
    assert valid.url.startswith("https://")
    assert valid.tls["profile"] == "valid"
    assert requests.get(valid.url, verify=cynic.ca_certificate, timeout=10).json() == {"message": "Hello, World!"}
    with pytest.raises(requests.exceptions.SSLError, match="unable to get local issuer certificate"):
        requests.get(valid.url, timeout=10)
    expired = cynic.service("http-json", tls={"profile": "expired"})
    with pytest.raises(requests.exceptions.SSLError, match="certificate has expired"):
        requests.get(expired.url, verify=cynic.ca_certificate, timeout=10)
    ended = cynic.wait_for_event(lambda event: event["service"] == expired.name, timeout=10)
    assert ended["end"] == "tls_failed"


def test_client_cert_required_passes_with_the_client_certificate_the_ca_signed(cynic):
    mutual = cynic.service("http-json", tls="client-cert-required")
    response = requests.get(mutual.url, verify=cynic.ca_certificate, cert=cynic.client_certificate, timeout=10)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(mutual.url, verify=cynic.ca_certificate, timeout=10)
