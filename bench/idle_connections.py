#!/usr/bin/env python3
"""Idle-connection benchmark: what holding many silent connections costs cynic.

Builds cynic (swift build), starts `cynic serve noresponse`, then opens CONNECTIONS connections
to it that never send a byte, spread over several loopback source addresses (127.0.0.1,
127.0.0.2, ...) so no single source runs out of ephemeral ports. It measures cynic's resident
memory and thread count before and with every connection open, checks that a new connection is
still accepted at once and that every held connection is still open (none was dropped), then
closes them. Prints a table: connections held, memory per connection, threads, time to open
them all.

Both ends of every connection are on this machine, so the count is bounded by this process's
open-file limit (raised to its hard limit here; cynic raises its own) and is cut to fit with a
note (`ulimit -Hn N` lifts it, where the system lets you). Loopback only; bounded by CONNECTIONS and
a time budget for opening them (--seconds, 120 by default).

    python3 bench/idle_connections.py [--connections 10000] [--seconds 120] [--hold 60] [--json FILE]
    CYNIC=.build/release/cynic python3 bench/idle_connections.py   # that binary, no build

--hold keeps every connection open that long before checking that none was dropped (and probes
a new connection in the middle of it); --pin runs cynic on the first core and this client on the
second. --connections 0 opens as many as the open-file limit allows.
"""
import argparse, http.client, json, os, resource, selectors, socket, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from proxy import api_port, cynic_binary, read_start_line  # noqa: E402  (the bench folder is on sys.path)
PER_SOURCE = 20000  # well under the 28k ephemeral ports of one source address


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def accepted(port):
    """cynic's count of connections its one service has accepted, from the control API on `port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/services")
        services = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return sum(service["connections"]["accepted"] for service in services)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=120, help="budget for opening them")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds to hold them all before checking")
    parser.add_argument("--json", help="also write the figures to this file, as JSON")
    parser.add_argument("--pin", action="store_true", help="cynic on the first core, this client on the second")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    pinned = args.pin and len(cores) >= 2

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fitting = hard - 200  # this process's own descriptors, and cynic's besides its connections
    wanted = args.connections or fitting
    if wanted > fitting:
        print(f"note: {wanted} connections need {wanted} descriptors on each side; the hard "
              f"open-file limit is {hard}, so {fitting} are opened (raise it with ulimit -Hn)")
        wanted = fitting

    binary = cynic_binary("debug")
    server_prefix = ["taskset", "-c", str(cores[0])] if pinned else []
    # The control API is on only to ask cynic when it accepted the probe (see below).
    server = subprocess.Popen(server_prefix + [binary, "serve", "noresponse", "--port", "0", "--param", "hold_ms=600000",
                                               "--api", "127.0.0.1:0", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    clients = []
    try:
        start = read_start_line(server)
        if start is None:
            sys.exit(f"cynic exited ({server.wait()}) before it listened")
        port, control_port = start["services"][0]["port"], api_port(start)
        if pinned:
            os.sched_setaffinity(0, {cores[1]})
        time.sleep(0.2)
        rss_before, threads_before = status(server.pid, "VmRSS"), status(server.pid, "Threads")

        started = time.monotonic()
        deadline = started + args.seconds
        marks = []  # when each thousandth connection was open: accepting slows down as they pile up?
        while len(clients) < wanted and time.monotonic() < deadline:
            if len(clients) % 1000 == 0:
                marks.append(time.monotonic())
            source = f"127.0.0.{1 + len(clients) // PER_SOURCE}"
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            clients.append(s)
        opening = time.monotonic() - started
        marks.append(time.monotonic())

        # The server accepts asynchronously: let it catch up before measuring.
        time.sleep(1.0)
        rss_held, threads_held = status(server.pid, "VmRSS"), status(server.pid, "Threads")

        # Still serving: a new connection is accepted and held like the others, in the middle of
        # the hold. Connecting only proves the kernel's backlog took it: the probe is counted as
        # accepted once cynic's own count of accepted connections (the control API's
        # `connections.accepted`) has grown. (Counting cynic's descriptors in /proc/PID/fd, as this
        # did, takes 10-20 ms a look with 20,000 open: the look, not cynic, was the figure.)
        time.sleep(max(0.0, args.hold / 2 - 1.0))
        accepted_before = accepted(control_port)
        probe_started = time.monotonic()
        probe = socket.create_connection(("127.0.0.1", port), timeout=5)
        probe_connect = time.monotonic() - probe_started
        probe_accept = None
        looks = []
        while time.monotonic() - probe_started < 5:
            look_started = time.monotonic()
            grown = accepted(control_port) > accepted_before
            looks.append(time.monotonic() - look_started)
            if grown:
                probe_accept = time.monotonic() - probe_started
                break
        probe.close()
        time.sleep(args.hold / 2)

        # Still held: none of them was closed (a closed one would be readable, with EOF).
        selector = selectors.DefaultSelector()
        for s in clients:
            selector.register(s, selectors.EVENT_READ)
        closed = len(selector.select(timeout=0.5))
        selector.close()
    finally:
        for s in clients:
            s.close()
        server.terminate()
        server.wait(timeout=10)

    held = len(clients)
    per_connection = (rss_held - rss_before) * 1024 / held if held else 0
    print()
    print("| connections held | cynic RSS before | with all held | per connection | threads before / held | opened in | new connect | dropped |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {held} | {rss_before / 1024:.1f} MiB | {rss_held / 1024:.1f} MiB | {per_connection / 1024:.2f} KiB "
          f"| {threads_before} / {threads_held} | {opening:.2f} s | {probe_connect * 1000:.1f} ms | {closed} |")
    print(f"(held {args.hold:g} s; new connect: connect() returning, in the middle of the hold; "
          f"accepted: cynic's count of accepted connections grown: "
          f"{'not seen within 5 s' if probe_accept is None else f'{probe_accept * 1000:.1f} ms'}, "
          f"{len(looks)} looks of {statistics.median(looks) * 1000:.1f} ms each)")
    if held < wanted:
        print(f"note: only {held} of {wanted} opened within {args.seconds:g} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"held": held, "wanted": wanted, "hard_limit": hard, "rss_before_kib": rss_before,
                       "rss_held_kib": rss_held, "per_connection_bytes": per_connection, "threads_before": threads_before,
                       "threads_held": threads_held, "opening_s": opening, "connect_ms": probe_connect * 1000,
                       "accept_ms": None if probe_accept is None else probe_accept * 1000,
                       "accept_looks": len(looks), "accept_look_ms": statistics.median(looks) * 1000, "dropped": closed,
                       "first_1000_s": marks[1] - marks[0] if len(marks) > 1 else opening,
                       "slowest_1000_s": max(b - a for a, b in zip(marks, marks[1:])) if len(marks) > 1 else opening,
                       "hold_s": args.hold}, f)
    return 0 if closed == 0 and held == wanted else 1


if __name__ == "__main__":
    sys.exit(main())
