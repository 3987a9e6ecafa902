#!/usr/bin/env python3
"""CPU per request: what one HTTP request costs each server, in CPU microseconds.

Requests per second move with whatever else the machine is doing; the CPU a server spends per
request moves much less (only through caches). This starts each server pinned to the first core,
runs `wrk -t1 -c50 -d5s` on the second, and reads the server's user and system CPU time from
/proc/PID/task/*/stat around it: (CPU seconds) / (requests wrk counted). The servers take turns,
ROUNDS times, and the medians are printed: so a noisy minute hits every server alike.

    python3 bench/cpu_per_request.py [--rounds 5] [--close] [--nginx]
    CYNIC=.build/release/cynic python3 bench/cpu_per_request.py   # that binary, no build

Servers: `cynic serve http-json` (the Swift plugin), `cynic serve http-json-c` (the same answer
from bench/plugins/http-json-c.c, compiled here) and, with --nginx, nginx answering the same
body. --close sends `Connection: close`. Loopback only; each run is bounded by wrk's -d.
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
from proxy import cynic_binary, ensure_program, free_port, wait_until_accepting  # noqa: E402

BODY = '{"message": "Hello, World!"}'
NGINX = """
{user}
worker_processes 1; master_process off; daemon off; pid {folder}/nginx.pid;
events {{ worker_connections 1024; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port};
  location / {{ default_type application/json; return 200 '{body}'; }} }} }}
"""


def cpu_seconds(pid):
    """User + system time of every thread of `pid`, in seconds."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run_wrk(port, close, cores):
    command = ["taskset", "-c", str(cores[1]), "wrk", "-t1", "-c50", "-d5s", f"http://127.0.0.1:{port}/"]
    if close:
        command[5:5] = ["-H", "Connection: close"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    return int(re.search(r"(\d+) requests in", output).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--close", action="store_true", help="Connection: close on every request")
    parser.add_argument("--nginx", action="store_true", help="nginx beside cynic")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        sys.exit("two cores are needed: the server on one, wrk on the other")
    ensure_program("wrk", "wrk")
    binary = cynic_binary("release")
    work = tempfile.mkdtemp(prefix="cynic-cpu-")
    try:
        plugins = os.path.join(work, "plugins")
        os.makedirs(plugins, mode=0o700)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", os.path.join(ROOT, "include"),
                        '-DPLUGIN_NAME="http-json-c"', "-DPLUGIN_PORT=0", "-o",
                        os.path.join(plugins, "http-json-c.so"), os.path.join(BENCH, "plugins", "http-json-c.c")],
                       check=True)
        servers = {
            "cynic http-json (Swift)": lambda port: [binary, "serve", "http-json", "--port", str(port), "--no-api"],
            "cynic http-json-c (C)": lambda port: [binary, "serve", "http-json-c", "--port", str(port), "--no-api",
                                                   "--plugin-dir", plugins],
        }
        if args.nginx:
            nginx = ensure_program("nginx", "nginx")

            def nginx_command(port):
                folder = tempfile.mkdtemp(dir=work)
                with open(os.path.join(folder, "nginx.conf"), "w") as f:
                    f.write(NGINX.format(folder=folder, port=port, body=BODY,
                                         user="user root;" if os.geteuid() == 0 else ""))
                return [nginx, "-p", folder, "-e", os.path.join(folder, "error.log"), "-c",
                        os.path.join(folder, "nginx.conf")]
            servers["nginx 1.22, 1 worker"] = nginx_command
        figures = {name: [] for name in servers}
        for round_ in range(args.rounds):
            for name, command in servers.items():
                port = free_port()
                server = subprocess.Popen(["taskset", "-c", str(cores[0])] + command(port),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    wait_until_accepting(port, server, name)
                    time.sleep(0.3)
                    before = cpu_seconds(server.pid)
                    requests = run_wrk(port, args.close, cores)
                    spent = cpu_seconds(server.pid) - before
                    figures[name].append(spent / requests * 1e6)
                finally:
                    server.terminate()
                    server.wait(timeout=10)
            print(f"round {round_ + 1}/{args.rounds}: " +
                  ", ".join(f"{name} {values[-1]:.2f} µs" for name, values in figures.items()), flush=True)
        first = statistics.median(next(iter(figures.values())))
        print(f"\nCPU per request ({'Connection: close' if args.close else 'keep-alive'}, wrk -t1 -c50 -d5s, "
              f"median of {args.rounds}; server on core {cores[0]}, wrk on core {cores[1]}):")
        for name, values in figures.items():
            median = statistics.median(values)
            print(f"  {name:<26} {median:7.2f} µs  ({median / first:.2f}× the first; "
                  f"runs {min(values):.2f} to {max(values):.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
