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

    python3 bench/idle_connections.py [--connections 10000] [--seconds 120]
"""
import argparse, os, resource, selectors, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_SOURCE = 20000  # well under the 28k ephemeral ports of one source address


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=120, help="budget for opening them")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wanted = args.connections
    fitting = hard - 200  # this process's own descriptors, and cynic's besides its connections
    if wanted > fitting:
        print(f"note: {wanted} connections need {wanted} descriptors on each side; the hard "
              f"open-file limit is {hard}, so {fitting} are opened (raise it with ulimit -Hn)")
        wanted = fitting

    subprocess.run(["swift", "build"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    binary = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/cynic"
    server = subprocess.Popen([binary, "serve", "noresponse", "--port", "0", "--param", "hold_ms=600000"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    clients = []
    try:
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        time.sleep(0.2)
        rss_before, threads_before = status(server.pid, "VmRSS"), status(server.pid, "Threads")

        started = time.monotonic()
        deadline = started + args.seconds
        while len(clients) < wanted and time.monotonic() < deadline:
            source = f"127.0.0.{1 + len(clients) // PER_SOURCE}"
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            clients.append(s)
        opening = time.monotonic() - started

        # The server accepts asynchronously: let it catch up before measuring.
        time.sleep(1.0)
        rss_held, threads_held = status(server.pid, "VmRSS"), status(server.pid, "Threads")

        # Still serving: a new connection is accepted and held like the others.
        probe_started = time.monotonic()
        probe = socket.create_connection(("127.0.0.1", port), timeout=5)
        probe_connect = time.monotonic() - probe_started
        probe.close()

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
    if held < wanted:
        print(f"note: only {held} of {wanted} opened within {args.seconds:g} s")
    return 0 if closed == 0 and held == wanted else 1


if __name__ == "__main__":
    sys.exit(main())
