"""Runs a cynic binary with its control API alone, for as long as a test session needs it."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Deque, List, Optional, Sequence

from .client import Cynic

# With --json, cynic's first line on standard output is one JSON object, once everything listens:
# its services, the log sink, the local CA and `control_api`, the API's URL (README, "One service
# for a test suite").
JSON_FLAG = "--json"

START_TIMEOUT = 30.0
# After SIGTERM cynic lets connections end for --drain-seconds (5 by default) and exits by 2 s
# after that whatever runs; past this, SIGKILL.
STOP_TIMEOUT = 10.0
# The output kept for error messages: the last lines, both streams interleaved as they came.
OUTPUT_LINES = 200


class CynicServerError(RuntimeError):
    """cynic could not be found, did not start, or died."""


def find_binary() -> str:
    """The cynic to run: `$CYNIC`, else `cynic` on PATH."""
    named = os.environ.get("CYNIC")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise CynicServerError(f"CYNIC={named}: not an executable file")
        return named
    found = shutil.which("cynic")
    if found is None:
        raise CynicServerError("cynic not found: set CYNIC to the cynic binary "
                               "(e.g. CYNIC=$PWD/.build/debug/cynic) or put cynic on PATH")
    return found


class CynicServer:
    """`cynic serve --api 127.0.0.1:0 --json`, started by `start()` (or `with`) and stopped by
    `stop()`. `--json` is added to `args` unless given: the API's URL comes from the start line.
    Its output is read all along by two threads, so its pipes never fill; `output()` has the
    last lines, and `start_line` the parsed start line."""

    def __init__(self, binary: Optional[str] = None,
                 args: Sequence[str] = ("serve", "--api", "127.0.0.1:0"),
                 start_timeout: float = START_TIMEOUT, stop_timeout: float = STOP_TIMEOUT):
        self.binary = binary
        self.args = list(args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.api: Optional[str] = None
        self.start_line: Optional[dict] = None
        self.process: Optional[subprocess.Popen] = None
        self._lines: Deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._readers: List[threading.Thread] = []

    def __enter__(self) -> "CynicServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def command(self) -> List[str]:
        flag = [] if JSON_FLAG in self.args else [JSON_FLAG]
        return [self.binary or "cynic", *self.args, *flag]

    def client(self, token: Optional[str] = None) -> Cynic:
        return Cynic(self.api, token=token)

    def output(self) -> List[str]:
        with self._lock:
            return list(self._lines)

    def start(self) -> "CynicServer":
        if self.binary is None:
            self.binary = find_binary()
        try:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as error:
            raise CynicServerError(f"cannot start {self.binary}: {error}") from error
        for stream, watch in ((self.process.stdout, True), (self.process.stderr, False)):
            reader = threading.Thread(target=self._read, args=(stream, watch), daemon=True,
                                      name=f"cynic output ({'stdout' if watch else 'stderr'})")
            reader.start()
            self._readers.append(reader)
        deadline = time.monotonic() + self.start_timeout
        while not self._listening.wait(0.05):
            if self.process.poll() is not None:
                self._join_readers()
                raise self._failure(f"exited with status {self.process.returncode} before "
                                    "its control API listened")
            if time.monotonic() >= deadline:
                self.stop()
                raise self._failure(f"did not print its JSON start line within {self.start_timeout:g} s")
        if self.api is None:
            self.stop()
            raise self._failure("its start line names no control API (\"control_api\": null)")
        return self

    def check(self) -> None:
        """Raises `CynicServerError`, with its last output, if cynic is no longer running."""
        if self.process is not None and self.process.poll() is not None:
            self._join_readers()
            raise self._failure(f"died (status {self.process.returncode})")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            self._join_readers()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(self.stop_timeout)
        self._join_readers()

    def _read(self, stream, watch: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            if watch and not self._listening.is_set():
                start = _start_line(line)
                if start is not None:
                    self.start_line = start
                    api = start.get("control_api")
                    self.api = api.rstrip("/") if isinstance(api, str) else None
                    self._listening.set()
        stream.close()

    def _join_readers(self) -> None:
        # The pipes end when cynic and anything holding them have gone; bounded all the same.
        for reader in self._readers:
            reader.join(5)

    def _failure(self, what: str) -> CynicServerError:
        lines = self.output()
        shown = "\n".join(f"    {line}" for line in lines[-30:]) if lines else "    (nothing)"
        return CynicServerError(f"{' '.join(self.command)}: {what}; its output:\n{shown}")


def _start_line(line: str) -> Optional[dict]:
    """The start line's object, or None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and "services" in parsed else None
