#!/usr/bin/env python3
"""--isolate benchmark: how soon the other services answer again after a plugin crashes the worker.

Starts `cynic --isolate` with two services, `crashy` (a C plugin that dereferences NULL in
conn_open) and `quick` (random, 3 bytes), then CRASHES times: connects to crashy, which kills the
worker, and measures the time from that connect to the first connection to `quick` answered in
full by the next worker. Each round installs a new version of the crasher first (the one before
is quarantined), which the worker loads as a hot swap. Prints p50 and max. Loopback only.

    python3 bench/isolate_restart.py [--crashes 20]
    CYNIC=.build/debug/cynic python3 bench/isolate_restart.py   # that binary, no build
"""
import argparse, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from proxy import cynic_binary  # noqa: E402  (the bench folder is on sys.path)

# Dereferences NULL in conn_open; -DROUND=N makes each build a new version.
SOURCE = os.path.join(ROOT, "Tests", "Fixtures", "crasher", "crasher.c")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install(folder, round_number):
    staging = os.path.join(folder, ".crasher.so.tmp")
    subprocess.run(["cc", "-shared", "-fPIC", f"-DROUND={round_number}", "-I", os.path.join(ROOT, "include"), "-o", staging,
                    SOURCE], check=True)
    os.rename(staging, os.path.join(folder, "crasher.so"))


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            data = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    return len(data) == 3
                data += chunk
    except OSError:
        return False


def crash(port, deadline):
    """Connects to crashy once it listens (the new version's service starts after its load)."""
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            time.sleep(0.01)
            continue
        crashed = time.monotonic()
        try:
            s.recv(1)
        except OSError:
            pass
        s.close()
        return crashed
    raise RuntimeError("crashy never listened")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--crashes", type=int, default=20)
    args = parser.parse_args()
    binary = cynic_binary()
    folder = tempfile.mkdtemp(prefix="cynic-isolate-")
    os.chmod(folder, 0o755)
    crashy, quick = free_port(), free_port()
    with open(os.path.join(folder, "cynic.yaml"), "w") as f:
        f.write(f"services:\n  crashy:\n    behaviour: crasher\n    port: {crashy}\n"
                f"  quick:\n    behaviour: random\n    port: {quick}\n    params: {{length: 3}}\n"
                "log_sink: {enabled: false}\n")
    install(folder, 0)
    cynic = subprocess.Popen([binary, "-c", os.path.join(folder, "cynic.yaml"), "--plugin-dir", folder, "--no-api", "--isolate"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    times = []
    try:
        deadline = time.monotonic() + 60
        while not answers(quick):
            if time.monotonic() > deadline or cynic.poll() is not None:
                raise RuntimeError("cynic did not start")
            time.sleep(0.05)
        for round_number in range(args.crashes):
            if round_number > 0:
                install(folder, round_number)
            crashed = crash(crashy, time.monotonic() + 30)
            while not answers(quick):
                if time.monotonic() - crashed > 30:
                    raise RuntimeError("quick did not answer again within 30 s")
            times.append(time.monotonic() - crashed)
    finally:
        cynic.terminate()
        try:
            _, errors = cynic.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            cynic.kill()
            _, errors = cynic.communicate()
        shutil.rmtree(folder, ignore_errors=True)
    crashes_logged = errors.count("worker crashed (SIGSEGV) in plugin crasher")
    print(f"crashes: {len(times)} (logged by the supervisor: {crashes_logged})")
    print(f"other service answering again after a crash: p50 {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
