#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/) from real senders.

Each seed is a small real input: log frames made by Python's own SocketHandler, configuration
files from the README and the tests, control API bodies from the docs and from what toxiproxy's
clients send, HTTP requests captured from curl and Python, ClientHellos captured from openssl,
curl and Python. Run it again to refresh them: `python3 fuzz/make-corpus.py`; files are named by
what made them, so a rerun replaces rather than adds.
"""
import json
import logging
import logging.handlers
import os
import pickle
import re
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
REPO = os.path.dirname(HERE)


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def framed(payload):
    return struct.pack(">I", len(payload)) + payload


# --- the log sink: frames, JSON records, pickles -------------------------------------------------

def log_records():
    handler = logging.handlers.SocketHandler("/nonexistent", None)
    records = {
        "info": logging.makeLogRecord({"name": "tests.client", "levelno": 20, "levelname": "INFO",
                                       "msg": "connected to %s:%d", "args": ("127.0.0.1", 2020),
                                       "process": 4321, "processName": "MainProcess",
                                       "created": 1700000000.25}),
        "warning-unicode": logging.makeLogRecord({"name": "tests.élan", "levelno": 30, "levelname": "WARNING",
                                                  "msg": "retrying \u20ac\nsecond line", "args": None}),
        "custom-level": logging.makeLogRecord({"name": "x", "levelno": 15, "levelname": "Level 15", "msg": 42}),
    }
    record = logging.makeLogRecord({"name": "tests.error", "levelno": 40, "levelname": "ERROR",
                                    "msg": "failed %d times", "args": (3,)})
    try:
        1 / 0
    except ZeroDivisionError:
        record.exc_info = sys.exc_info()
    records["error-traceback"] = record
    return {name: handler.makePickle(r) for name, r in records.items()}


def log_corpus():
    pickles = log_records()
    for name, frame in pickles.items():
        write("log-frames", f"sockethandler-{name}", frame)
        write("log-pickle", f"sockethandler-{name}", frame[4:])
    # The same dict in every protocol pickle knows.
    d = pickle.loads(pickles["info"][4:])
    for proto in range(0, 6):
        write("log-pickle", f"protocol-{proto}", pickle.dumps(d, proto))
    shared = [1]
    write("log-pickle", "shared-references", pickle.dumps({"a": shared, "b": shared, "t": (1, 2, 3, 4),
                                                            "big": 2 ** 70, "neg": -2 ** 70, "f": 1.5,
                                                            "none": None, "b2": b"\x00\xff"}, 2))
    # What the tests send as JSON (Tests/CynicLogSinkTests) and the README's fields.
    jsons = {
        "minimal": '{"message": "first"}',
        "level-name": '{"level": "INFO", "name": "honest", "message": "still here"}',
        "level-number": '{"level": 30, "logger": "tests.client", "msg": "retrying", "pid": 77}',
        "all-fields": json.dumps({"level": "warn", "name": "tests.client", "message": "line one\nline two",
                                  "source": "pytest", "process": 123, "processName": "worker-1",
                                  "created": 1700000000.5, "exc_text": "Traceback (most recent call last):"}),
        "number-message": '{"level": "fatal", "message": 42, "process": "MainProcess"}',
    }
    for name, text in jsons.items():
        write("log-json", name, text)
        write("log-frames", f"json-{name}", framed(text.encode()))
    # A connection's worth, as the sink's test sends it: records, an empty one, an undecodable one,
    # a pickle that would call a function (refused), and one cut short.
    stream = (framed(b'{"message": "first"}') + framed(b"") + framed(b"not a record")
              + framed(b"cos\nsystem\n(S'true'\ntR.") + pickles["info"] + framed(b'{"message": "fourth"}'))
    write("log-frames", "stream-mixed", stream)
    write("log-frames", "stream-cut-short", framed(b'{"message": "cut short"}')[:-3])
    write("log-frames", "oversized-then-record", struct.pack(">I", 0xFFFFFFFF) + b"B" * 64)


# --- configuration files -------------------------------------------------------------------------

def config_corpus():
    readme = open(os.path.join(REPO, "README.md")).read()
    for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", readme, re.S)):
        write("config", f"readme-{index}.yaml", block)
    examples = {
        "tls-mapping.yaml": "services:\n  api:\n    behaviour: http-json\n    port: 0\n    tls:\n"
                            "      profile: expired\n      alpn: [h2, http/1.1]\n      min_version: '1.2'\n"
                            "      max_version: '1.3'\n      names: [localhost, 127.0.0.1]\n",
        "tls-files.yaml": "services:\n  api:\n    port: 8443\n    tls: {certificate: /tmp/c.pem, key: /tmp/k.pem}\n",
        "unix-sink-off.yaml": "log_sink:\n  enabled: false\nservices:\n  sock:\n    behaviour: reset\n"
                              "    unix: /tmp/cynic-test.sock\n    seed: 42\n",
        "shapers.yaml": "services:\n  slow:\n    behaviour: http-json\n    host: ::1\n    port: 2001\n"
                        "    shapers:\n      - shaper: latency\n        probability: 0.5\n"
                        "        direction: upstream\n        params: {ms: 200, jitter_ms: ~}\n"
                        "      - shaper: latency\n      - shaper: reset-after\n        name: cut\n"
                        "        params:\n          bytes: 100\n",
        "error-port.yaml": "services:\n  slow-api:\n    behaviour: http-slow\n    port: eighty\n",
        "error-anchor.yaml": "base: &b {port: 1}\nservices:\n  a: *b\n",
    }
    for name, text in examples.items():
        write("config", name, text)


# --- control API bodies --------------------------------------------------------------------------

def control_corpus():
    bodies = {
        # docs/control-api.md and the README
        "service-proxy": {"name": "db", "behaviour": "proxy", "parameters": {"upstream": "127.0.0.1:5432"}},
        "service-full": {"name": "api", "behaviour": "http-json", "listen": "127.0.0.1:0",
                         "parameters": {"content_type": "text/plain", "interval_ms": 200, "flag": True},
                         "shapers": [{"shaper": "latency", "parameters": {"ms": 200}},
                                     {"shaper": "latency", "name": "slow", "direction": "upstream",
                                      "probability": 0.25, "parameters": {"ms": 1.5}}],
                         "enabled": False, "seed": 18446744073709551615,
                         "tls": {"profile": "expired", "alpn": ["h2"], "min_version": "1.2", "names": ["localhost"]}},
        "service-unix-tls-profile": {"name": "u", "behaviour": "reset", "listen": "unix:/tmp/u.sock", "tls": "valid"},
        "service-ipv6": {"name": "v6", "behaviour": "reset", "listen": "[::1]:2020", "seed": None, "tls": None},
        "shaper": {"shaper": "latency", "parameters": {"ms": 200}},
        "shaper-change": {"probability": 0.5, "parameters": {"ms": None, "jitter_ms": 50}},
        "change-disable": {"enabled": False},
        # toxiproxy's clients (toxiproxy-python, toxiproxy-go) send these
        "toxiproxy-proxy": {"name": "redis", "upstream": "127.0.0.1:6379", "listen": "127.0.0.1:26379", "enabled": True},
        "toxiproxy-proxy-empty-listen": {"name": "pg", "upstream": "localhost:5432", "listen": ""},
        "toxiproxy-populate": [{"name": "a", "upstream": "127.0.0.1:1", "listen": ":0"},
                               {"name": "b", "upstream": "127.0.0.1:2", "enabled": False}],
        "toxiproxy-toxic": {"name": "slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                            "attributes": {"latency": 1000, "jitter": 0}},
        "toxiproxy-toxic-cynic": {"type": "cynic.bandwidth", "attributes": {"bytes_per_second": 100000, "shared": True}},
        "toxiproxy-toxic-bandwidth": {"name": "bw", "type": "bandwidth", "stream": "upstream", "toxicity": 1.0, "attributes": {"rate": 100}},
        "toxiproxy-toxic-slow-close": {"name": "sc", "type": "slow_close", "stream": "downstream", "toxicity": 1.0, "attributes": {"delay": 500}},
        "toxiproxy-toxic-timeout": {"name": "to", "type": "timeout", "stream": "downstream", "toxicity": 0.5, "attributes": {"timeout": 0}},
        "toxiproxy-toxic-reset-peer": {"name": "rp", "type": "reset_peer", "stream": "downstream", "toxicity": 1.0, "attributes": {"timeout": 100}},
        "toxiproxy-toxic-slicer": {"name": "sl", "type": "slicer", "stream": "downstream", "toxicity": 1.0, "attributes": {"average_size": 64, "size_variation": 32, "delay": 10}},
        "toxiproxy-toxic-limit-data": {"name": "ld", "type": "limit_data", "stream": "downstream", "toxicity": 1.0, "attributes": {"bytes": 2048}},
        "toxiproxy-toxic-update": {"attributes": {"latency": 50}},
        "toxiproxy-toxic-update-toxicity": {"toxicity": 0.25},
        "bad-unknown-field": {"name": "x", "behaviour": "reset", "colour": "red"},
    }
    for name, body in bodies.items():
        write("control-body", name, json.dumps(body))
    write("control-body", "not-json", "name=db&behaviour=proxy")


# --- HTTP requests and ClientHellos, captured from real clients -----------------------------------

def capture(run_client, answer=b"", idle=0.5, total=5.0):
    """The bytes a client sends to a fresh listener, until it is quiet for `idle` seconds."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    got = bytearray()

    def serve():
        server.settimeout(total)
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.settimeout(idle)
        deadline = time.monotonic() + total
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                got.extend(chunk)
            if answer:
                conn.sendall(answer)
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        run_client(port)
    finally:
        thread.join()
        server.close()
    return bytes(got)


def run(*argv, stdin=None):
    subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def http_corpus():
    def python(code):
        return lambda port: run(sys.executable, "-c", code.replace("PORT", str(port)))

    clients = {
        "curl-get": lambda p: run("curl", "-s", f"http://127.0.0.1:{p}/index.html?q=1"),
        "curl-http1.0": lambda p: run("curl", "-s", "--http1.0", f"http://127.0.0.1:{p}/"),
        "curl-post-form": lambda p: run("curl", "-s", "-d", "a=b&c=d", f"http://127.0.0.1:{p}/form"),
        "curl-post-json": lambda p: run("curl", "-s", "-H", "Content-Type: application/json", "-H", "X-Trace: 1",
                                        "--data", '{"k": [1, 2]}', f"http://127.0.0.1:{p}/api"),
        "curl-chunked": lambda p: run("curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                                      f"http://127.0.0.1:{p}/up", stdin=b"hello chunked world\n"),
        "curl-head": lambda p: run("curl", "-s", "-I", f"http://127.0.0.1:{p}/"),
        "curl-delete-auth": lambda p: run("curl", "-s", "-X", "DELETE", "-u", "user:pass",
                                          f"http://127.0.0.1:{p}/services/db"),
        "requests-get": python("import requests; requests.get('http://127.0.0.1:PORT/x', timeout=5)"),
        "requests-post-json": python("import requests; requests.post('http://127.0.0.1:PORT/services', "
                                     "json={'name': 'db', 'behaviour': 'proxy'}, timeout=5)"),
        "http.client-chunked": python(
            "import http.client\n"
            "c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=5)\n"
            "c.request('PUT', '/chunks', body=iter([b'ab', b'cde']), encode_chunked=True)\n"
            "c.getresponse()"),
        "urllib-get": python("import urllib.request; urllib.request.urlopen('http://127.0.0.1:PORT/u', timeout=5)"),
    }
    captured = {}
    for name, client in clients.items():
        data = capture(client, answer=OK)
        if data:
            captured[name] = data
            write("http-request", name, data)
        else:
            print(f"http-request: {name} sent nothing", file=sys.stderr)
    # Two requests on one connection, as a keep-alive client pipelines them.
    if "curl-get" in captured and "curl-post-json" in captured:
        write("http-request", "pipelined-get-post", captured["curl-get"] + captured["curl-post-json"])


def client_hello_corpus():
    def python(code):
        return lambda port: run(sys.executable, "-c", code.replace("PORT", str(port)))

    def openssl(*flags):
        return lambda p: run("openssl", "s_client", "-connect", f"127.0.0.1:{p}", *flags, stdin=b"")

    clients = {
        "openssl-default": openssl(),
        "openssl-tls1.2-sni": openssl("-tls1_2", "-servername", "localhost"),
        "openssl-tls1.0": openssl("-tls1", "-cipher", "DEFAULT@SECLEVEL=0"),
        "openssl-alpn-session": openssl("-alpn", "h2,http/1.1", "-servername", "example.test"),
        "curl-https": lambda p: run("curl", "-s", "-k", "--max-time", "3", f"https://localhost:{p}/"),
        "curl-tls1.2-h2": lambda p: run("curl", "-s", "-k", "--max-time", "3", "--http2", "--tlsv1.2",
                                        "--tls-max", "1.2", f"https://localhost:{p}/"),
        "python-ssl": python("import socket, ssl\n"
                             "s = socket.create_connection(('127.0.0.1', PORT), timeout=3)\n"
                             "try: ssl.create_default_context().wrap_socket(s, server_hostname='localhost')\n"
                             "except Exception: pass"),
        "requests-https": python("import requests\n"
                                 "try: requests.get('https://localhost:PORT/', timeout=3)\n"
                                 "except Exception: pass"),
    }
    for name, client in clients.items():
        data = capture(client, idle=1.0)
        if data:
            write("tls-client-hello", name, data)
            if name == "openssl-default":
                write("tls-client-hello", "openssl-default-two-records", split_into_two_records(data))
                # Byte at a time is what the harness's chunking does; this one arrives cut short.
                write("tls-client-hello", "openssl-default-cut-short", data[: len(data) // 2])
        else:
            print(f"tls-client-hello: {name} sent nothing", file=sys.stderr)


def split_into_two_records(data):
    """The ClientHello of one record re-framed as two handshake records, as a large hello arrives."""
    version, length = data[1:3], struct.unpack(">H", data[3:5])[0]
    message = data[5:5 + length]
    half = len(message) // 2
    return b"".join(b"\x16" + version + struct.pack(">H", len(part)) + part
                    for part in (message[:half], message[half:]))


if __name__ == "__main__":
    log_corpus()
    config_corpus()
    control_corpus()
    http_corpus()
    client_hello_corpus()
    for target in sorted(os.listdir(CORPUS)):
        print(f"{target}: {len(os.listdir(os.path.join(CORPUS, target)))} seeds")
