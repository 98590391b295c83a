"""A private `redis-server` for tests that stop and restart Redis.

It runs on a spare port, keeps nothing on disk (no RDB, no AOF) and lives in its own
temporary directory, so stopping it harms nothing else on the machine. Every wait
is bounded.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from redis import Redis
from redis.exceptions import RedisError


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    """The path of `redis-server`, or None when it is not installed."""
    return shutil.which("redis-server")


class RedisServer:
    """One `redis-server` subprocess: `start()`, `stop()`, `start()` again on the same port."""

    def __init__(self, directory: Path, port: int | None = None, timeout: float = 10.0) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server (on the same port as before) and wait until it answers PING."""
        if self.running:
            return self
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            )
        deadline = time.monotonic() + self.timeout
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    if client.ping():
                        self.dump.unlink(missing_ok=True)  # loaded once: a later start begins empty
                        return self
                except RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {self.timeout} s")

    def stop(self, keep_data: bool = False) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it does not exit in time.

        With `keep_data` the data is written to disk first and the next `start()`
        loads it, as a Redis with persistence comes back after an outage.
        """
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if keep_data:
            with Redis(host="127.0.0.1", port=self.port, socket_timeout=self.timeout) as client:
                client.save()
        process.terminate()
        try:
            process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=self.timeout)

    @property
    def dump(self) -> Path:
        """Where `stop(keep_data=True)` leaves the data (redis-server's default file name)."""
        return self.directory / "dump.rdb"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
