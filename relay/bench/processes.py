"""Child processes with their output in a log file, and free ports: shared by `relay bench` and the test suite."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildProcess:
    """A subprocess whose stdout and stderr go to a log file that can be read while it runs."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd)

    def output(self) -> str:
        """Return everything the process has printed so far."""
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 30) -> int:
        """Stop the process with SIGTERM (SIGKILL after `timeout`) and return its exit code."""
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return self.proc.returncode


def relay_command(*args: str) -> list[str]:
    """Return the command line of `relay ARGS…` with this interpreter."""
    return [sys.executable, "-m", "relay", *args]
