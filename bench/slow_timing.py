#!/usr/bin/env python3
"""Timing under load: how late each byte of many slow answers arrives against its schedule.

Opens CONNECTIONS connections to an `http-slow` service (one byte of the body every INTERVAL ms),
sends each one GET and records, for every body byte, when the kernel received it: the socket's
SO_TIMESTAMPNS, read with recvmsg, so the figure does not depend on how soon this client gets
round to reading. bench/run starts the service and runs this on the other core.

Lateness: each connection's schedule starts at the arrival of its first body byte, t0 (sent with
the head, at once); byte k is due at t0 + k * INTERVAL, and its lateness is its arrival minus
that. http-slow waits INTERVAL after each byte is written before the next, so lateness adds up
along a connection: the last byte's is the drift of the whole answer. A read that returns several
body bytes (they queued up in the socket) carries one timestamp, that of the last byte read
(Linux stamps a TCP read with its last segment), so only that byte is measured and the others are
counted as coalesced.

Client lag: for every read, the wall clock when recvmsg returned minus the kernel's timestamp of
the data: how far behind this client itself was. A client that keeps up has a lag well under the
lateness it reports.

    python3 bench/slow_timing.py --port P [--connections 5000] [--interval 100] [--bytes 20] [--json FILE]
"""
import argparse, json, os, resource, selectors, socket, struct, sys, time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Connection:
    __slots__ = ("socket", "head", "in_body", "body", "t0", "done")

    def __init__(self, s):
        self.socket, self.head, self.in_body, self.body, self.t0, self.done = s, b"", False, 0, None, False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=100, help="the service's interval_ms")
    parser.add_argument("--bytes", type=int, default=20, help="the body's length")
    parser.add_argument("--timeout", type=float, default=120, help="give up after this many seconds")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--server-pid", type=int, help="before sending the requests, wait until this server "
                        "holds a descriptor for every connection (it has accepted them all)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    interval_ns = int(args.interval * 1e6)

    selector = selectors.EpollSelector()
    connections = []
    started = time.monotonic()
    for index in range(args.connections):
        s = socket.socket()
        s.bind((f"127.0.0.{1 + index // 20000}", 0))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.connect(("127.0.0.1", args.port))
        connections.append(Connection(s))
    opened = time.monotonic() - started
    accepted = None
    if args.server_pid:
        # The kernel completes a handshake before the server accepts: wait for the server, so the
        # figure is the timing of answers, not of a backlog of connections still to accept.
        while time.monotonic() - started < args.timeout:
            if len(os.listdir(f"/proc/{args.server_pid}/fd")) >= args.connections:
                accepted = time.monotonic() - started
                break
            time.sleep(0.01)
    # Every connection open first, then every request at once: the answers run side by side, and
    # this client is not busy connecting while bytes arrive.
    for connection in connections:
        connection.socket.sendall(REQUEST)
        connection.socket.setblocking(False)
        selector.register(connection.socket, selectors.EVENT_READ, connection)

    lateness_us, lag_us = [], []
    by_byte = {}  # byte index → lateness (µs): per step, or adding up?
    coalesced = failed = 0
    open_count = len(connections)
    deadline = time.monotonic() + args.timeout
    ancillary = socket.CMSG_SPACE(16)
    while open_count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            connection = key.data
            try:
                data, messages, _, _ = connection.socket.recvmsg(4096, ancillary)
            except BlockingIOError:
                continue
            except OSError:
                data, messages = b"", []
                failed += 1
            read_at = time.time_ns()
            if not data:
                selector.unregister(connection.socket)
                connection.socket.close()
                connection.done = True
                open_count -= 1
                if connection.body != args.bytes:
                    failed += 1
                continue
            stamp = None
            for level, kind, value in messages:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    stamp = seconds * 1_000_000_000 + nanoseconds
            if stamp is None:
                failed += 1
                continue
            lag_us.append((read_at - stamp) / 1000)
            if not connection.in_body:
                connection.head += data
                end = connection.head.find(b"\r\n\r\n")
                if end < 0:
                    continue
                data = connection.head[end + 4:]
                connection.head, connection.in_body = b"", True
                if not data:
                    continue
            first = connection.body
            connection.body += len(data)
            last = connection.body - 1
            if first == 0:
                # The schedule's anchor: the first body byte (any byte read with it is coalesced).
                connection.t0 = stamp - last * interval_ns if last == 0 else stamp
                coalesced += last
                continue
            coalesced += last - first
            lateness_us.append((stamp - (connection.t0 + last * interval_ns)) / 1000)
            by_byte.setdefault(last, []).append(lateness_us[-1])
    for connection in connections:
        if not connection.done:
            connection.socket.close()
            failed += 1
    result = {
        "connections": args.connections, "opened_s": opened, "interval_ms": args.interval, "bytes": args.bytes,
        "accepted_s": accepted, "measured_bytes": len(lateness_us), "coalesced_bytes": coalesced, "failed_connections": failed,
        "lateness_p50_ms": percentile(lateness_us, 50) / 1000, "lateness_p99_ms": percentile(lateness_us, 99) / 1000,
        "lateness_max_ms": (max(lateness_us) if lateness_us else float("nan")) / 1000,
        "first_step_p50_ms": percentile(by_byte.get(1, []), 50) / 1000,
        "last_byte_p50_ms": percentile(by_byte.get(args.bytes - 1, []), 50) / 1000,
        "lag_p50_ms": percentile(lag_us, 50) / 1000, "lag_p99_ms": percentile(lag_us, 99) / 1000,
        "lag_max_ms": (max(lag_us) if lag_us else float("nan")) / 1000,
    }
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
