#!/usr/bin/env python3
"""Soak: minutes of mixed load over every behaviour, then cynic's descriptors and memory.

Starts one cynic (`serve --api 127.0.0.1:0`, nothing else), a real nginx as an upstream, and
through the control API creates a service for every shipped behaviour on port 0, a proxy and an
http-proxy in front of nginx, TLS services (valid and expired certificates, and the handshake
faults) and a plugin in a watched folder. Then, for MINUTES:

- client threads go round every service, each time doing what a client does and checking what
  it sees against what the behaviour promises (docs/failures.md): a 200 where there should be
  one, a reset where a reset is promised, a certificate refused for the right reason, and so on;
- one thread calls the API four times a second: shapers added to and removed from a service
  under load, toxics on the proxy (toxiproxy's API), the lists, the events, the metrics; each
  call is timed;
- every few seconds a new version of the watched plugin is renamed in, and its clients expect
  the generation never to go back.

Before the soak (after a warm-up round, once every connection has ended) and after it (the load
stopped, every connection ended) it reads cynic's open descriptors and RSS from /proc. It prints
one table and exits 1 when a check fails: a request that failed where it should not, an API
call slower than a second, descriptors or RSS more than 5 % above where they started, cynic
gone.

    python3 bench/soak.py [--minutes 10] [--clients 6] [--swap-seconds 3] [--json FILE]
    CYNIC=.build/release/cynic python3 bench/soak.py   # that binary, no build

Loopback only; every client operation has a timeout; the load is bounded by the client threads.
"""
import argparse, http.client, json, os, re, select, shutil, socket, ssl, statistics, subprocess, sys
import tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy import api_port, cynic_binary, ensure_program, free_port, read_start_line, wait_until_accepting  # noqa: E402
from hot_swap import SOURCE as HOT_SWAP_SOURCE, compile_versions  # noqa: E402

TIMEOUT = 5.0  # any single client operation; the slow behaviours below are set to finish well within it

# The watched plugin: hot_swap.py's, under a name of its own ("GEN n\n", then a close).
SWAP_SOURCE = HOT_SWAP_SOURCE.replace('"swapme"', '"soakswap"')

NGINX_CONFIG = """
{user}
worker_processes 1;
pid {folder}/nginx.pid;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/temp;
    proxy_temp_path {folder}/temp;
    fastcgi_temp_path {folder}/temp;
    uwsgi_temp_path {folder}/temp;
    scgi_temp_path {folder}/temp;
    server {{
        listen 127.0.0.1:{port};
        root {folder}/www;
        keepalive_requests 100000;
    }}
}}
"""

INDEX = b"soak upstream\n" * 64  # 896 bytes


# What a client sees. Each probe does one client's work against a service and returns None when
# what it saw is what the behaviour promises, or a line saying what it saw instead.

class Unexpected(Exception):
    pass


def http_get(port, path="/", context=None, headers=None, read_body=True):
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    else:
        connection = http.client.HTTPSConnection("localhost", port, timeout=TIMEOUT, context=context)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read() if read_body else b""
        return response, body
    finally:
        connection.close()


def expect_status(port, code, path="/", context=None, body_check=None):
    response, body = http_get(port, path, context)
    if response.status != code:
        raise Unexpected(f"status {response.status}, not {code}")
    if body_check and not body_check(body):
        raise Unexpected(f"body {body[:60]!r}")


def expect_error(action, *kinds, words=None):
    """`action` must fail with one of `kinds` (and `words` in its text, when given)."""
    try:
        action()
    except kinds as error:
        if words and not any(w in str(error) for w in words):
            raise Unexpected(f"{type(error).__name__}: {error} (expected {' or '.join(words)})")
        return
    except Exception as error:  # noqa: BLE001 — anything else is what the probe reports
        raise Unexpected(f"{type(error).__name__}: {error}")
    raise Unexpected("no error")


def raw(port, send=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=TIMEOUT):
    """Everything the service sends until its FIN; a reset raises ConnectionResetError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if send:
            s.sendall(send)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def raw_to_end(port):
    """What the service sends before it ends the connection, by FIN or by RST: a behaviour that
    closes without reading the request (random) ends with an RST when the request came in
    first, as any server's close with unread bytes does."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


def expect_length(data, length):
    if len(data) != length:
        raise Unexpected(f"{len(data)} bytes, not {length}")


def silent_for(port, seconds, send=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
    """The service accepts and sends nothing for `seconds`."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(send)
        s.settimeout(seconds)
        try:
            chunk = s.recv(1)
        except socket.timeout:
            return
        raise Unexpected(f"it sent {chunk!r}" if chunk else "it closed")


def never_accepts(port):
    """A connect is never answered, or (the kernel's choice once the queue is full) refused."""
    s = socket.socket()
    s.settimeout(0.3)
    try:
        s.connect(("127.0.0.1", port))
    except (socket.timeout, ConnectionRefusedError):
        return
    finally:
        s.close()
    # Connected: the handshake completed into the full queue's last place; nothing may come.
    raise Unexpected("the connect was answered")


def upload_stalls(port):
    """zero-window: an upload stops moving; nothing comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 2
        block = b"x" * 65536
        while time.monotonic() < deadline:
            _, writable, _ = select.select([], [s], [], 0.3)
            if not writable:
                if sent > 50_000_000:
                    raise Unexpected(f"{sent} bytes went in")
                return  # stalled
            try:
                sent += s.send(block)
            except BlockingIOError:
                pass
        raise Unexpected(f"still taking bytes after 2 s ({sent})")


def tls_context(ca):
    context = ssl.create_default_context(cafile=ca)
    return context


def tls_handshake(port, context):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        with context.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return t.recv(100)


def tls_hangs(port, context):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        try:
            context.wrap_socket(s, server_hostname="localhost")
        except (socket.timeout, TimeoutError):
            return
        raise Unexpected("the handshake completed")


def probes(ports, ca):
    """service name → its probe (no arguments)."""
    context = tls_context(ca)
    p = ports
    json_body = lambda b: b"Hello, World!" in b  # noqa: E731
    return {
        "http-html": lambda: expect_status(p["http-html"], 200, body_check=lambda b: b"<" in b),
        "http-json": lambda: expect_status(p["http-json"], 200, body_check=json_body),
        "http-nobody": lambda: expect_error(lambda: http_get(p["http-nobody"]), http.client.IncompleteRead),
        "http-slow": lambda: expect_status(p["http-slow"], 200, body_check=json_body),
        "truncated": lambda: expect_error(lambda: http_get(p["truncated"]), http.client.IncompleteRead),
        "chunked-malformed": lambda: expect_error(lambda: http_get(p["chunked-malformed"]),
                                                  http.client.IncompleteRead, ValueError),
        "garbage-http": lambda: expect_error(lambda: http_get(p["garbage-http"]), http.client.HTTPException),
        "huge": lambda: expect_status(p["huge"], 200, body_check=lambda b: len(b) == 1_000_000),
        "mislabelled": lambda: expect_error(lambda: json.loads(http_get(p["mislabelled"])[1]), ValueError),
        "status": lambda: expect_status(p["status"], 503),
        "redirect-loop": lambda: expect_status(p["redirect-loop"], 302),
        "keepalive-race": lambda: expect_status(p["keepalive-race"], 200),
        "drip": lambda: expect_status(p["drip"], 200, body_check=lambda b: len(b) == 10),
        "empty": lambda: expect_error(lambda: http_get(p["empty"]), http.client.RemoteDisconnected),
        "reset": lambda: expect_error(lambda: raw(p["reset"]), ConnectionResetError),
        "random": lambda: expect_length(raw_to_end(p["random"]), 7),
        "noresponse": lambda: silent_for(p["noresponse"], 0.3),
        "accept-close": lambda: expect_error(lambda: http_get(p["accept-close"]),
                                             http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError),
        "never-accept": lambda: never_accepts(p["never-accept"]),
        "zero-window": lambda: upload_stalls(p["zero-window"]),
        "proxy": lambda: expect_status(p["proxy"], 200, body_check=lambda b: b == INDEX),
        "http-proxy": lambda: expect_status(p["http-proxy"], 503),
        "shaped": lambda: expect_status(p["shaped"], 200, body_check=json_body),
        "tls-valid": lambda: expect_status(p["tls-valid"], 200, context=context, body_check=json_body),
        "tls-expired": lambda: expect_error(lambda: http_get(p["tls-expired"], context=context),
                                            ssl.SSLCertVerificationError, words=["expired"]),
        "tls-hang": lambda: tls_hangs(p["tls-hang"], context),
        "tls-alert": lambda: expect_error(lambda: tls_handshake(p["tls-alert"], context), ssl.SSLError,
                                          words=["HANDSHAKE_FAILURE"]),
        "tls-plaintext": lambda: expect_error(lambda: tls_handshake(p["tls-plaintext"], context), ssl.SSLError,
                                              words=["WRONG_VERSION_NUMBER"]),
        "tls-reset": lambda: expect_error(lambda: tls_handshake(p["tls-reset"], context), ConnectionResetError),
        "tls-truncated": lambda: expect_error(lambda: tls_handshake(p["tls-truncated"], context), ssl.SSLError,
                                              words=["EOF"]),
    }


# The services: (name, behaviour, parameters, extra fields). Slow behaviours are set to finish
# well within a client's timeout, and holding ones to let go soon, so that connections end.
def services(upstream):
    return [
        ("http-html", "http-html", {}, {}),
        ("http-json", "http-json", {}, {}),
        ("http-nobody", "http-nobody", {}, {}),
        ("http-slow", "http-slow", {"interval_ms": 10}, {}),
        ("truncated", "truncated", {}, {}),
        ("chunked-malformed", "chunked-malformed", {}, {}),
        ("garbage-http", "garbage-http", {}, {}),
        ("huge", "huge", {"size": 1_000_000}, {}),
        ("mislabelled", "mislabelled", {}, {}),
        ("status", "status", {}, {}),
        ("redirect-loop", "redirect-loop", {}, {}),
        ("keepalive-race", "keepalive-race", {}, {}),
        ("drip", "drip", {"size": 10, "interval_ms": 20}, {}),
        ("empty", "empty", {}, {}),
        ("reset", "reset", {}, {}),
        ("random", "random", {}, {}),
        ("noresponse", "noresponse", {"hold_ms": 2000}, {}),
        ("accept-close", "accept-close", {}, {}),
        ("never-accept", "never-accept", {}, {}),
        ("zero-window", "zero-window", {"hold_ms": 2000}, {}),
        ("proxy", "proxy", {"upstream": f"127.0.0.1:{upstream}"}, {}),
        ("http-proxy", "http-proxy", {"upstream": f"127.0.0.1:{upstream}", "fail": "every:1"}, {}),
        ("shaped", "http-json", {}, {}),
        ("tls-valid", "http-json", {}, {"tls": "valid"}),
        ("tls-expired", "http-json", {}, {"tls": "expired"}),
        ("tls-hang", "tls-hang", {"hold_ms": 2000}, {}),
        ("tls-alert", "tls-alert", {}, {}),
        ("tls-plaintext", "tls-plaintext", {}, {}),
        ("tls-reset", "tls-reset", {}, {}),
        ("tls-truncated", "tls-truncated", {}, {}),
        ("swapped", "soakswap", {}, {}),
    ]


class API:
    def __init__(self, port):
        self.port = port
        self.timings = []  # (seconds, method, path, status, seconds connecting, seconds into the run)
        self.lock = threading.Lock()
        self.epoch = time.monotonic()

    def call(self, method, path, body=None, expect=(200,)):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        start = time.monotonic()
        try:
            # Connected apart, so a slow call says whether its time went to the TCP handshake
            # (a SYN dropped costs the client's 1 s retransmission) or to cynic's answer.
            connection.connect()
            connected = time.monotonic()
            payload = json.dumps(body) if body is not None else None
            connection.request(method, path, body=payload,
                               headers={"Content-Type": "application/json"} if payload else {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        elapsed = time.monotonic() - start
        with self.lock:
            self.timings.append((elapsed, method, path, response.status, connected - start, start - self.epoch))
        if response.status not in expect:
            raise RuntimeError(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data) if data and response.getheader("Content-Type", "").startswith("application/json") else data


def process_figures(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return {"fds": fds, "rss_kib": rss_kib, "threads": threads}


def open_connections(api):
    """service → its open connections, for those with any."""
    return {s["name"]: s["connections"]["open"] for s in api.call("GET", "/services") if s["connections"]["open"]}


def fill_event_log(port, count):
    """`count` short connections: the event log keeps the last 10,000 records by design, so the
    figures are read once it is full, not while it grows."""
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass


def settle(api, pid, seconds=20):
    """Waits until no connection is open (or `seconds`), then reads the figures."""
    deadline = time.monotonic() + seconds
    while open_connections(api) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the last closes' descriptors, and the event log's writes
    return process_figures(pid), open_connections(api)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=6, help="client threads, each going round every service")
    parser.add_argument("--swap-seconds", type=float, default=3, help="a new plugin version every this many seconds")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    binary = cynic_binary("release")
    nginx = ensure_program("nginx", "nginx")
    work = tempfile.mkdtemp(prefix="cynic-soak-")
    children = []
    failures = []
    try:
        # The upstream: nginx, serving one small page.
        os.makedirs(os.path.join(work, "www"))
        os.makedirs(os.path.join(work, "temp"))
        with open(os.path.join(work, "www", "index.html"), "wb") as f:
            f.write(INDEX)
        upstream = free_port()
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(NGINX_CONFIG.format(folder=work, port=upstream, user="user root;" if os.geteuid() == 0 else ""))
        children.append(subprocess.Popen([nginx, "-p", work, "-e", os.path.join(work, "nginx-error.log"),
                                          "-c", os.path.join(work, "nginx.conf")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until_accepting(upstream, children[-1], "nginx")

        # The swapped plugin's versions, compiled now; version 0 in the watched folder.
        plugins, staging = os.path.join(work, "plugins"), os.path.join(work, "staging")
        os.makedirs(plugins, mode=0o700)
        os.makedirs(staging)
        swaps = int(args.minutes * 60 / args.swap_seconds) + 2
        compile_versions(SWAP_SOURCE, staging, swaps + 1)
        os.rename(os.path.join(staging, "v0.so"), os.path.join(plugins, "soakswap.so"))

        log_path = os.path.join(work, "cynic.log")
        log = open(log_path, "w")
        environment = dict(os.environ, CYNIC_CA_DIR=os.path.join(work, "ca"))
        # Its start line on standard output (--json), its console in the log file.
        cynic = subprocess.Popen([binary, "serve", "--api", "127.0.0.1:0", "--plugin-dir", plugins, "--json"],
                                 stdout=subprocess.PIPE, stderr=log, text=True, env=environment)
        children.append(cynic)
        start = read_start_line(cynic)
        if start is None:
            sys.exit(f"cynic exited ({cynic.wait()}) before its API listened; see {log_path}")
        api = API(api_port(start))

        ports = {}
        for name, behaviour, parameters, extra in services(upstream):
            body = {"name": name, "behaviour": behaviour, "listen": "127.0.0.1:0",
                    "parameters": {k: str(v) for k, v in parameters.items()}, **extra}
            service = api.call("POST", "/services", body, expect=(201,))
            ports[name] = int(service["listen"].rsplit(":", 1)[1])
        ca = os.path.join(work, "ca.pem")
        with open(ca, "wb") as f:
            f.write(api.call("GET", "/tls/ca.pem"))
        checks = probes(ports, ca)
        generation = [0]
        gen_lock = threading.Lock()

        def swapped():
            answer = raw(ports["swapped"], send=b"")
            match = re.fullmatch(rb"GEN (\d+)\n", answer)
            if not match:
                raise Unexpected(f"answered {answer!r}")
            seen = int(match.group(1))
            with gen_lock:
                floor = generation[0] - 1  # a connection accepted just before a rename may get the one before
            if seen < floor:
                raise Unexpected(f"generation {seen} after {floor + 1} was renamed in")
        checks["swapped"] = swapped

        outcomes = {name: [0, 0] for name in checks}  # name → [as promised, not]
        seen_wrong = {}
        lock = threading.Lock()
        stop = threading.Event()

        def one_round(names):
            for name in names:
                if stop.is_set():
                    return
                try:
                    checks[name]()
                    ok, what = True, None
                except Unexpected as error:
                    ok, what = False, str(error)
                except Exception as error:  # noqa: BLE001
                    ok, what = False, f"{type(error).__name__}: {error}"
                with lock:
                    outcomes[name][0 if ok else 1] += 1
                    if not ok:
                        seen_wrong.setdefault(name, []).append(what)

        # Warm-up: one round by one client (TLS certificates minted, every plugin called once),
        # the event log filled, then every connection ended: where cynic starts from.
        one_round(list(checks))
        fill_event_log(ports["http-json"], 10_500)
        before, left_before = settle(api, cynic.pid)
        warm_failures = {k: v for k, v in seen_wrong.items()}
        print(f"warm-up round done; cynic at {before['fds']} descriptors, {before['rss_kib']} KiB RSS, "
              f"{before['threads']} threads ({left_before} connections open)", flush=True)

        def client(offset):
            names = list(checks)
            names = names[offset % len(names):] + names[:offset % len(names)]
            while not stop.is_set():
                one_round(names)

        api_errors = []

        def api_caller():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    api.call("POST", "/services/shaped/shapers",
                             {"shaper": "latency", "name": f"l{n}", "parameters": {"ms": "5"}}, expect=(201,))
                    api.call("POST", "/services/shaped/shapers",
                             {"shaper": "slicer", "name": f"s{n}", "parameters": {"size": "7", "delay_ms": "0"}},
                             expect=(201,))
                    api.call("POST", "/proxies/proxy/toxics",
                             {"type": "latency", "name": f"t{n}", "attributes": {"latency": 3}}, expect=(200,))
                    api.call("GET", "/services")
                    api.call("GET", "/proxies")
                    api.call("GET", "/events?limit=20")
                    api.call("GET", "/metrics")
                    api.call("DELETE", f"/services/shaped/shapers/l{n}", expect=(204,))
                    api.call("DELETE", f"/services/shaped/shapers/s{n}", expect=(204,))
                    api.call("DELETE", f"/proxies/proxy/toxics/t{n}", expect=(204,))
                    if n % 20 == 0:
                        api.call("POST", "/plugins/rescan")
                except Exception as error:  # noqa: BLE001
                    api_errors.append(str(error))
                stop.wait(0.25)

        swapped_at = []  # seconds into the run, for a slow API call's nearest swap

        def swapper():
            for g in range(1, swaps + 1):
                if stop.wait(args.swap_seconds):
                    return
                with gen_lock:
                    os.rename(os.path.join(staging, f"v{g}.so"), os.path.join(plugins, "soakswap.so"))
                    generation[0] = g
                    swapped_at.append(time.monotonic() - api.epoch)

        outcomes = {name: [0, 0] for name in checks}
        seen_wrong.clear()
        threads = [threading.Thread(target=client, args=(i * 5,)) for i in range(args.clients)]
        threads += [threading.Thread(target=api_caller), threading.Thread(target=swapper)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples = []
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(min(15, args.minutes * 60))
            if cynic.poll() is not None:
                failures.append(f"cynic exited with status {cynic.returncode} during the soak")
                break
            samples.append((round(time.monotonic() - started), process_figures(cynic.pid)))
            with lock:
                served = sum(a for a, _ in outcomes.values())
                wrong = sum(b for _, b in outcomes.values())
            print(f"{samples[-1][0]:>4} s: {served} client operations as promised, {wrong} not; "
                  f"{samples[-1][1]['fds']} descriptors, {samples[-1][1]['rss_kib']} KiB", flush=True)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        duration = time.monotonic() - started

        after, left_after = (None, None)
        if cynic.poll() is None:
            after, left_after = settle(api, cynic.pid)

        # The table.
        total_ok = sum(a for a, _ in outcomes.values())
        total_wrong = sum(b for _, b in outcomes.values())
        api_times = sorted(t for t, *_ in api.timings)
        def nearest_swap(at):
            return min((w - at for w in swapped_at), key=abs, default=float("nan"))

        def described(timing):
            t, m, p, s, c, at = timing
            return (f"{m} {p} → {s} in {t:.3f} s ({c:.3f} s connecting), {at:.1f} s in, "
                    f"nearest swap {nearest_swap(at):+.2f} s")
        slow_calls = [described(timing) for timing in api.timings if timing[0] >= 1.0]
        slowest = [described(timing) for timing in sorted(api.timings, reverse=True)[:5]]
        print()
        print(f"soak: {duration / 60:.1f} min, {args.clients} clients, {len(checks)} services, "
              f"{generation[0]} plugin swaps, cynic {binary}")
        print(f"client operations: {total_ok} as promised, {total_wrong} not")
        for name, (ok, wrong) in outcomes.items():
            line = f"  {name:<18} {ok:>7} ok {wrong:>5} not"
            if wrong:
                sample = seen_wrong[name][:3]
                line += "  e.g. " + " | ".join(sample)
            print(line)
        if api_times:
            print(f"API calls: {len(api_times)}, p50 {statistics.median(api_times) * 1000:.1f} ms, "
                  f"p99 {api_times[min(len(api_times) - 1, int(len(api_times) * 0.99))] * 1000:.1f} ms, "
                  f"max {api_times[-1] * 1000:.1f} ms; {len(slow_calls)} took a second or more; "
                  f"{len(api_errors)} failed")
            for line in slowest:
                print(f"  slowest: {line}")
        if after:
            for key, unit in (("fds", "descriptors"), ("rss_kib", "KiB RSS"), ("threads", "threads")):
                change = (after[key] - before[key]) / before[key] * 100
                print(f"{unit}: {before[key]} before, {after[key]} after ({change:+.1f} %)")
            print(f"connections open (service: count): {left_before or 'none'} before, {left_after or 'none'} after")

        # The checks.
        if total_wrong:
            failures.append(f"{total_wrong} client operations did not see what the behaviour promises")
        if warm_failures:
            failures.append(f"the warm-up round saw {sum(len(v) for v in warm_failures.values())} unexpected outcomes: "
                            + "; ".join(f"{k}: {v[0]}" for k, v in warm_failures.items()))
        if slow_calls:
            failures.append(f"{len(slow_calls)} API calls took a second or more: {slow_calls[:5]}")
        if api_errors:
            failures.append(f"{len(api_errors)} API calls failed: {api_errors[:3]}")
        if after:
            for key in ("fds", "rss_kib"):
                if after[key] > before[key] * 1.05:
                    failures.append(f"{key} grew more than 5 %: {before[key]} → {after[key]}")
        figures = {"minutes": duration / 60, "clients": args.clients, "services": len(checks),
                   "swaps": generation[0], "operations_ok": total_ok, "operations_not": total_wrong,
                   "outcomes": outcomes, "api_calls": len(api_times),
                   "api_p99_ms": api_times[min(len(api_times) - 1, int(len(api_times) * 0.99))] * 1000 if api_times else None,
                   "api_max_ms": api_times[-1] * 1000 if api_times else None, "api_errors": len(api_errors),
                   "before": before, "after": after, "samples": samples, "failures": failures}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("\nevery check passed")


if __name__ == "__main__":
    main()
