"""A client of an openpi policy server that never waits longer than it was told to.

openpi-client's own `WebsocketClientPolicy` waits for the server without limit; a robot's policy thread
must not. Here every call is bounded: connecting by `connect_timeout`, each reply by `timeout`. Any
failure (refused, unreachable, slow, an error frame, a closed connection, a reply without `actions`)
drops the connection and raises `PolicyUnavailable` with one line saying what happened. The next
call reconnects, but not before a back-off that doubles from `backoff` up to `max_backoff` while the
server keeps failing; a call made during the back-off fails at once, without touching the network.
After a timeout the connection is always dropped: a late reply must never be read as the answer to
the next observation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ros2_vla.errors import PolicyUnavailable, first_line
from ros2_vla.serving.protocol import API_KEY_HEADER, API_KEY_PREFIX, pack, unpack


@dataclass
class OpenpiClient:
    """`infer(obs_map) -> reply_map` against ws://host:port; `metadata` is the server's first frame."""

    host: str
    port: int
    api_key: str = ""
    timeout: float = 10.0  # [s] for one reply
    connect_timeout: float = 5.0  # [s] to open the connection and read the metadata
    backoff: float = 0.5  # [s] first wait after a failure
    max_backoff: float = 10.0  # [s] longest wait between attempts
    clock: Any = time.monotonic  # seconds, for the back-off
    metadata: dict = field(default_factory=dict, init=False)
    _conn: Any = field(default=None, init=False, repr=False)
    _failures: int = field(default=0, init=False)
    _next_try: float = field(default=float("-inf"), init=False)

    @property
    def uri(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        """One observation map -> the server's reply map (with `actions`); PolicyUnavailable on any failure."""
        conn = self._connection()
        try:
            conn.send(pack(obs))
            reply = conn.recv(timeout=self.timeout)
        except TimeoutError:
            raise self._fail(f"no reply from {self.uri} within {self.timeout:g} s") from None
        except Exception as exc:  # websockets' ConnectionClosed*, OSError: the connection is gone
            raise self._fail(f"connection to {self.uri} lost: {first_line(exc)}") from exc
        if isinstance(reply, str):  # openpi servers send the traceback as text, then close with 1011
            lines = [line for line in reply.strip().splitlines() if line.strip()]
            raise self._fail(f"the policy server failed: {lines[-1] if lines else 'no message'}")
        try:
            data = unpack(reply)
        except Exception as exc:  # msgpack raises several types for a damaged frame
            raise self._fail(f"unreadable reply from {self.uri}: {first_line(exc)}") from exc
        if not isinstance(data, dict) or "actions" not in data:
            keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise self._fail(f"the reply from {self.uri} has no 'actions' (it has {keys})")
        self._failures = 0
        return data

    def connect(self) -> dict:
        """Connect now (if not connected) and return the server's metadata; PolicyUnavailable on failure."""
        self._connection()
        return self.metadata

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may raise; it is gone either way
                pass
            self._conn = None

    def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        wait = self._next_try - self.clock()
        if wait > 0:
            raise PolicyUnavailable(
                f"policy server {self.uri} failed {self._failures} time(s); next try in {wait:.1f} s"
            )
        from websockets.sync.client import connect

        headers = {API_KEY_HEADER: API_KEY_PREFIX + self.api_key} if self.api_key else None
        try:
            # held open across calls, so entered by hand (websockets 17 warns about a connection that is not)
            conn = connect(
                self.uri,
                compression=None,
                max_size=None,
                additional_headers=headers,
                open_timeout=self.connect_timeout,
                close_timeout=1.0,
            ).__enter__()
        except Exception as exc:  # refused, unreachable, handshake rejected (e.g. a wrong API key), timeout
            raise self._fail(f"cannot connect to {self.uri}: {first_line(exc)}") from exc
        try:
            metadata = unpack(conn.recv(timeout=self.connect_timeout))
        except Exception as exc:
            conn.close()
            raise self._fail(f"{self.uri} sent no metadata frame: {first_line(exc)}") from exc
        self._conn, self.metadata = conn, metadata if isinstance(metadata, dict) else {}
        return conn

    def _fail(self, message: str) -> PolicyUnavailable:
        self.close()
        self._failures += 1
        delay = min(self.max_backoff, self.backoff * 2 ** (self._failures - 1))
        self._next_try = self.clock() + delay
        return PolicyUnavailable(f"{message}; retrying in {delay:.1f} s")
