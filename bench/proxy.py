#!/usr/bin/env python3
"""Proxy benchmark: what a relay between a client and a real HTTP server costs, cynic's `proxy`
behaviour beside socat and toxiproxy, in one run on one machine.

Starts nginx (Debian's package) as the upstream, from a small configuration in a temporary
folder: a static file, and `location = /ok { return 200 }` with keep-alive. Then measures each
path to it side by side:

  direct     the client talks to nginx
  socat      socat TCP-LISTEN:P,fork,reuseaddr TCP:127.0.0.1:UP
  toxiproxy  toxiproxy-server with one proxy and no toxic, when TOXIPROXY_SERVER=/path is set
  cynic      cynic serve proxy --param upstream=127.0.0.1:UP ($CYNIC, or this repository's
             release build); skipped with a note while that cynic has no `proxy` behaviour

and for each: the throughput of one connection (one GET of --size MiB, curl), of 50 concurrent
connections (wrk -t1 -c50 GETs of an 8 MiB file), requests per second of keep-alive HTTP
(wrk -t1 -c10 on /ok), and the round trip of a small keep-alive request from a Python client
doing them one after another (p50, p99, and what the relay adds to the direct path). Every figure
is the median of --runs runs (3 at least), the paths taken in turn within each run.

With two cores or more, the servers (nginx and the relay) are pinned to one core with taskset
and the load generators (curl, wrk, the Python client) to another, so a relay's cost shows as
throughput lost rather than as a fight with its client. Loopback only; every step is bounded in
time and count; --quick makes a short run (about a minute).

    python3 bench/proxy.py [--quick] [--runs 3] [--size 256]
    TOXIPROXY_SERVER=/work/toxiproxy-server CYNIC=.build/release/cynic python3 bench/proxy.py

nginx and wrk are installed with apt-get when missing and running as root; otherwise the script
says which packages to install.
"""
import argparse, datetime, http.client, json, os, re, select, shutil, socket, statistics, subprocess, sys, tempfile
import threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
CONCURRENT_FILE_MIB = 8  # what each of the 50 connections fetches again and again
CONCURRENT_CONNECTIONS = 50
KEEPALIVE_CONNECTIONS = 10

NGINX_CONFIG = """
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60s;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        root {folder}/www;
        location = /ok {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""


def ensure_program(program, package):
    """The program's path; installs its Debian package when missing and running as root."""
    path = shutil.which(program)
    if path:
        return path
    if os.geteuid() != 0:
        sys.exit(f"{program} is missing: install Debian's `{package}` (apt-get install {package})")
    print(f"installing {package} (apt-get)...", file=sys.stderr)
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL, env=environment, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, stdout=subprocess.DEVNULL,
                   env=environment, timeout=600)
    return shutil.which(program) or sys.exit(f"{package} installed, but no {program} on PATH")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_accepting(port, process, name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode} before accepting on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{name} not accepting on port {port} after {timeout} s")


class Cores:
    """Which core the servers run on and which the load generators run on."""

    def __init__(self):
        available = sorted(os.sched_getaffinity(0))
        self.pinned = len(available) >= 2
        self.servers, self.clients = (available[0], available[1]) if self.pinned else (None, None)

    def server_command(self, command):
        return ["taskset", "-c", str(self.servers)] + command if self.pinned else command

    def pin_this_process_to_clients(self):
        # Children (curl, wrk) inherit it; servers are started through taskset instead.
        if self.pinned:
            os.sched_setaffinity(0, {self.clients})


class Started:
    """The processes this run started, ended (by their handle) when it ends."""

    def __init__(self):
        self.processes = []

    def start(self, command, **options):
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, **options)
        self.processes.append(process)
        return process

    def stop_all(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def start_nginx(folder, cores, started, size_mib):
    nginx = ensure_program("nginx", "nginx")
    www = os.path.join(folder, "www")
    os.makedirs(www)
    os.makedirs(os.path.join(folder, "temp"))
    block = os.urandom(MIB)  # random, so no layer could compress it
    for name, mib in (("big.bin", size_mib), ("concurrent.bin", CONCURRENT_FILE_MIB)):
        with open(os.path.join(www, name), "wb") as f:
            for _ in range(mib):
                f.write(block)
    port = free_port()
    # As root, nginx's workers would run as nobody, who cannot enter a 0700 temporary folder.
    user = "user root;" if os.geteuid() == 0 else ""
    config = os.path.join(folder, "nginx.conf")
    with open(config, "w") as f:
        f.write(NGINX_CONFIG.format(folder=folder, port=port, user=user))
    process = started.start(cores.server_command([nginx, "-p", folder, "-e", os.path.join(folder, "error.log"),
                                                  "-c", config]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_accepting(port, process, "nginx")
    except RuntimeError as error:
        with open(os.path.join(folder, "error.log")) as log:
            sys.exit(f"{error}; its log:\n{log.read()}")
    return port


def start_socat(upstream, cores, started):
    socat = ensure_program("socat", "socat")
    port = free_port()
    process = started.start(cores.server_command(
        [socat, f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"TCP:127.0.0.1:{upstream}"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_accepting(port, process, "socat")
    return port


def start_toxiproxy(server, upstream, cores, started):
    """toxiproxy-server on a free API port, with one proxy (no toxic) created through its API."""
    api = free_port()
    process = started.start(cores.server_command([server, "-host", "127.0.0.1", "-port", str(api)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_accepting(api, process, "toxiproxy-server")
    port = free_port()
    body = json.dumps({"name": "bench", "listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{upstream}",
                       "enabled": True}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{api}/proxies", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 201:
            raise RuntimeError(f"toxiproxy: creating the proxy answered {answer.status}")
    wait_until_accepting(port, process, "toxiproxy's proxy")
    return port


def cynic_binary(configuration="release"):
    """The cynic to measure: $CYNIC, else this tree's, built now with `swift build -c
    CONFIGURATION`. Every bench takes it from here."""
    if os.environ.get("CYNIC"):
        return os.path.abspath(os.environ["CYNIC"])
    subprocess.run(["swift", "build", "-c", configuration], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return subprocess.run(["swift", "build", "-c", configuration, "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip() + "/cynic"


def read_start_line(process, seconds=30):
    """cynic's start line (`--json`: one JSON object on standard output once everything listens:
    each service's host and port, the control API's URL, ...), or None when cynic exits first.
    Raises RuntimeError when it says nothing within `seconds`."""
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    if not ready:
        raise RuntimeError(f"cynic printed no start line within {seconds} s")
    line = process.stdout.readline()
    return json.loads(line) if line else None


def api_port(start):
    """The control API's port, from a start line whose API listens on TCP."""
    return int(start["control_api"].rsplit(":", 1)[1])


def start_cynic(binary, upstream, cores, started):
    """cynic serve proxy; the port from its start line. Returns (port, None), or (None, why) when
    that cynic cannot serve `proxy` (no such behaviour yet)."""
    process = started.start(cores.server_command([binary, "serve", "proxy", "--port", "0", "--json",
                                                  "--param", f"upstream=127.0.0.1:{upstream}"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = read_start_line(process)
    if start is None:
        process.wait(timeout=10)  # it closed its output: it is exiting
        # Its last word is the reason (an unknown behaviour); info lines may come before it.
        said = process.stderr.read().strip().splitlines()
        return None, f"`{binary} serve proxy` exited with status {process.returncode}: " + (said[-1] if said else "(nothing)")
    # Its console, on standard error from here on, is read away so that the pipe never fills.
    threading.Thread(target=lambda: shutil.copyfileobj(process.stderr, open(os.devnull, "w")), daemon=True).start()
    port = start["services"][0]["port"]
    wait_until_accepting(port, process, "cynic")
    return port, None


# Measures. Each returns one number for one path; the caller takes the median of the runs.

def one_connection_mib_per_s(port, size_mib):
    result = subprocess.run(["curl", "-sS", "--max-time", "120", "-o", "/dev/null", "-w",
                             "%{size_download} %{time_total}", f"http://127.0.0.1:{port}/big.bin"],
                            capture_output=True, text=True, timeout=150)
    size, seconds = result.stdout.split()
    if result.returncode != 0 or int(size) != size_mib * MIB:
        raise RuntimeError(f"curl: status {result.returncode}, {size} bytes: {result.stderr.strip()}")
    return int(size) / float(seconds) / MIB


def wrk(port, path, connections, seconds):
    result = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                             f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk: status {result.returncode}: {result.stderr.strip()}")
    errors = re.search(r"Socket errors: .*|Non-2xx or 3xx responses: \d+", result.stdout)
    if errors:
        raise RuntimeError(f"wrk through port {port}: {errors.group(0)}")
    return result.stdout


def concurrent_mib_per_s(port, seconds):
    output = wrk(port, "/concurrent.bin", CONCURRENT_CONNECTIONS, seconds)
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", output).groups()
    scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]  # wrk's units are binary
    return float(value) * scale / MIB


def requests_per_s(port, seconds):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", wrk(port, "/ok", KEEPALIVE_CONNECTIONS, seconds)).group(1))


def round_trips_us(port, count):
    """Sequential small keep-alive requests on one connection: each round trip, in µs."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        times = []
        for index in range(count + count // 10):  # the first tenth warms up, and is not counted
            started = time.perf_counter_ns()
            connection.request("GET", "/ok")
            response = connection.getresponse()
            body = response.read()
            elapsed = time.perf_counter_ns() - started
            if response.status != 200 or body != b"ok\n":
                raise RuntimeError(f"round trip through port {port}: {response.status} {body[:40]!r}")
            if index >= count // 10:
                times.append(elapsed / 1000)
        return times
    finally:
        connection.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: smaller file, shorter wrk runs")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure, the median is shown (3 at least)")
    parser.add_argument("--size", type=int, help="MiB of the one-connection GET (256; 32 with --quick)")
    args = parser.parse_args()
    runs = max(3, args.runs)
    size_mib = args.size or (32 if args.quick else 256)
    wrk_seconds = 2 if args.quick else 5
    round_trip_count = 500 if args.quick else 2000
    ensure_program("wrk", "wrk")
    ensure_program("curl", "curl")

    # Other work on the machine shows in every figure: say how busy it was.
    load_before = os.getloadavg()[0]
    cores = Cores()
    started = Started()
    folder = tempfile.mkdtemp(prefix="cynic-bench-proxy-")
    notes = []
    try:
        upstream = start_nginx(folder, cores, started, size_mib)
        paths = {"direct": upstream, "socat": start_socat(upstream, cores, started)}
        toxiproxy = os.environ.get("TOXIPROXY_SERVER")
        if toxiproxy:
            paths["toxiproxy"] = start_toxiproxy(toxiproxy, upstream, cores, started)
        else:
            notes.append("toxiproxy: not measured (set TOXIPROXY_SERVER=/path/to/toxiproxy-server)")
        cynic_port, why_not = start_cynic(cynic_binary(), upstream, cores, started)
        if cynic_port:
            paths["cynic"] = cynic_port
        else:
            notes.append(f"cynic: pending, {why_not}")
        cores.pin_this_process_to_clients()

        figures = {name: {"one": [], "fifty": [], "rps": [], "p50": [], "p99": []} for name in paths}
        for run in range(runs):
            for name, port in paths.items():
                print(f"run {run + 1}/{runs}: {name}", file=sys.stderr)
                figures[name]["one"].append(one_connection_mib_per_s(port, size_mib))
                figures[name]["fifty"].append(concurrent_mib_per_s(port, wrk_seconds))
                figures[name]["rps"].append(requests_per_s(port, wrk_seconds))
                trips = round_trips_us(port, round_trip_count)
                figures[name]["p50"].append(percentile(trips, 50))
                figures[name]["p99"].append(percentile(trips, 99))
    finally:
        started.stop_all()
        shutil.rmtree(folder, ignore_errors=True)

    median = {name: {key: statistics.median(values) for key, values in measures.items()} for name, measures in figures.items()}
    rows = list(median) + ([] if "cynic" in median else ["cynic"])

    def cell(name, key, text):
        if name not in median:
            return "pending"
        value = median[name][key]
        if "cynic" not in median or name == "cynic":
            return text(value)
        return f"{text(value)} ({value / median['cynic'][key]:.2f}×)"

    def added(name, key):
        if name not in median:
            return "pending"
        return f"{median[name][key] - median['direct'][key]:+.0f} µs"

    print()
    print(f"Proxy benchmark, {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}; {machine()}")
    print(f"{'servers on core ' + str(cores.servers) + ', load generators on core ' + str(cores.clients) if cores.pinned else 'one core: nothing pinned'}; "
          f"median of {runs} runs; upstream nginx {nginx_version()}; load average before the run {load_before:.2f}")
    print()
    print(f"| path | 1 connection, {size_mib} MiB GET | {CONCURRENT_CONNECTIONS} connections | keep-alive req/s (wrk -c{KEEPALIVE_CONNECTIONS}) "
          f"| round trip p50 | p99 | added p50 | added p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in rows:
        print(f"| {name} | {cell(name, 'one', lambda v: f'{v:,.0f} MiB/s')} | {cell(name, 'fifty', lambda v: f'{v:,.0f} MiB/s')} "
              f"| {cell(name, 'rps', lambda v: f'{v:,.0f}')} | {cell(name, 'p50', lambda v: f'{v:.0f} µs')} "
              f"| {cell(name, 'p99', lambda v: f'{v:.0f} µs')} | {added(name, 'p50')} | {added(name, 'p99')} |")
    print()
    if "cynic" in median:
        print("(×: the path's figure divided by cynic's; added: the round trip minus the direct one)")
    else:
        print("(added: the round trip minus the direct one; ratios to cynic once cynic is measured)")
    for note in notes:
        print("note:", note)
    return 0


def nginx_version():
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return result.stderr.strip().split("/")[-1]


if __name__ == "__main__":
    sys.exit(main())
