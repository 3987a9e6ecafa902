#!/usr/bin/env python3
"""Hot-swap benchmark: how soon a new plugin version serves, and what clients see meanwhile.

Builds cynic (swift build), compiles SWAPS+1 versions of a small C plugin, starts
`cynic serve` on a plugin folder, then, with LOAD client threads hammering the service,
renames each version into the folder and measures the time from the rename to the first
connection answered by the new version. Prints a table: p50, p99 and max of that time, requests
served, and failed requests. Loopback only; bounded by SWAPS and a per-swap timeout.

    python3 bench/hot_swap.py [--swaps 100] [--load 4] [--json FILE]
    CYNIC=.build/release/cynic python3 bench/hot_swap.py   # that binary, no build

With --pin (two cores or more), cynic runs on the first core and the clients on the second.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from proxy import cynic_binary, read_start_line  # noqa: E402  (the bench folder is on sys.path)

SOURCE = r"""
#include <cynic/plugin.h>
static const cynic_host *host;
static void *create(const cynic_host *h) { host = h; return NULL; }
static void *conn_open(void *instance, cynic_conn *conn) {
    (void)instance;
    host->send(conn, "GEN %d\n", sizeof "GEN %d\n" - 1);
    host->close(conn);
    return NULL;
}
static const cynic_plugin plugin = {
    .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "swapme",
    .create = create, .conn_open = conn_open,
};
CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
"""


def compile_versions(source, staging, count):
    """`count` versions of the C plugin `source`, each answering its own number: v0.so, v1.so, ...
    in `staging`, ready to be renamed into a watched folder."""
    for generation in range(count):
        path = os.path.join(staging, f"v{generation}.c")
        with open(path, "w") as f:
            f.write(source.replace("%d", str(generation)))
        subprocess.run(["cc", "-shared", "-fPIC", "-I", os.path.join(ROOT, "include"), "-o",
                        os.path.join(staging, f"v{generation}.so"), path], check=True)


def ask(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        while True:
            chunk = s.recv(256)
            if not chunk:
                return data.decode()
            data += chunk


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--swaps", type=int, default=100)
    parser.add_argument("--load", type=int, default=4, help="client threads in a loop")
    parser.add_argument("--json", help="also write the figures to this file, as JSON")
    parser.add_argument("--pin", action="store_true", help="cynic on the first core, clients on the second")
    args = parser.parse_args()

    binary = cynic_binary("debug")
    cores = sorted(os.sched_getaffinity(0))
    pinned = args.pin and len(cores) >= 2
    server_prefix = ["taskset", "-c", str(cores[0])] if pinned else []
    work = tempfile.mkdtemp(prefix="cynic-bench-")
    plugins, staging = os.path.join(work, "plugins"), os.path.join(work, "staging")
    os.makedirs(plugins)
    os.makedirs(staging)
    compile_versions(SOURCE, staging, args.swaps + 1)
    os.rename(os.path.join(staging, "v0.so"), os.path.join(plugins, "swapme.so"))

    cynic = subprocess.Popen(server_prefix + [binary, "serve", "swapme", "--port", "0", "--plugin-dir", plugins, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        start = read_start_line(cynic)
        if start is None:
            sys.exit(f"cynic exited ({cynic.wait()}) before it listened")
        port = start["services"][0]["port"]
        if pinned:
            os.sched_setaffinity(0, {cores[1]})
        stop = threading.Event()
        served, failed = [0], []
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                try:
                    answer = ask(port)
                    ok = answer.startswith("GEN ")
                except OSError as error:
                    answer, ok = repr(error), False
                with lock:
                    if ok:
                        served[0] += 1
                    else:
                        failed.append(answer)

        threads = [threading.Thread(target=load) for _ in range(args.load)]
        for thread in threads:
            thread.start()
        delays = []
        for generation in range(1, args.swaps + 1):
            expected = f"GEN {generation}\n"
            start = time.monotonic()
            os.rename(os.path.join(staging, f"v{generation}.so"), os.path.join(plugins, "swapme.so"))
            while ask(port) != expected:
                if time.monotonic() - start > 10:
                    sys.exit(f"generation {generation} never served")
            delays.append((time.monotonic() - start) * 1000)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        cynic.terminate()
        cynic.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'swaps':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'served':>8} {'failed':>7}")
    print(f"{len(delays):>6} {percentile(delays, 50):>8.1f} {percentile(delays, 99):>8.1f} "
          f"{max(delays):>8.1f} {served[0]:>8} {len(failed):>7}")
    if failed:
        print("first failures:", failed[:3])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"swaps": len(delays), "p50_ms": percentile(delays, 50), "p99_ms": percentile(delays, 99),
                       "max_ms": max(delays), "served": served[0], "failed": len(failed),
                       "first_failures": failed[:3], "load_threads": args.load}, f)
    print(f"(rename into the folder → first connection served by the new version; load: {args.load} client threads)")


if __name__ == "__main__":
    main()
