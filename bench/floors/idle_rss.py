#!/usr/bin/env python3
"""RSS per idle connection of any server that prints "listening on 127.0.0.1:PORT".

The floor of bench/run's figure 3: run it on cynic and on a bare SwiftNIO server holding the
same connections (bench/floors/nio-idle), and the difference is what cynic adds per connection.

    python3 bench/floors/idle_rss.py 10000 .build/release/cynic serve noresponse --port 0 --no-api
    (cd bench/floors/nio-idle && swift build -c release)
    python3 bench/floors/idle_rss.py 10000 bench/floors/nio-idle/.build/release/nio-idle

The server runs on the first core, this client on the second; the connections never send a byte.
Loopback only; bounded by COUNT (and the open-file limit: both ends are here).
"""
import os, resource, socket, subprocess, sys, time

PER_SOURCE = 20000  # well under the 28k ephemeral ports of one source address


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    count, command = int(sys.argv[1]), sys.argv[2:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cores = sorted(os.sched_getaffinity(0))
    server = subprocess.Popen(["taskset", "-c", str(cores[0])] + command,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    clients = []
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                sys.exit(f"{command[0]} exited ({server.wait()}) before it listened")
            if "listening on" in line and "control API" not in line:
                port = int(line.rsplit(":", 1)[1])
        if len(cores) > 1:
            os.sched_setaffinity(0, {cores[1]})
        time.sleep(0.5)
        before = rss_kib(server.pid)
        for i in range(count):
            s = socket.socket()
            s.bind((f"127.0.0.{1 + i // PER_SOURCE}", 0))
            s.connect(("127.0.0.1", port))
            clients.append(s)
        time.sleep(2)  # the server accepts asynchronously
        held = rss_kib(server.pid)
        print(f"{' '.join(command)}: {count} idle connections, RSS {before / 1024:.1f} → {held / 1024:.1f} MiB, "
              f"{(held - before) / count:.2f} KiB each")
    finally:
        for s in clients:
            s.close()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
