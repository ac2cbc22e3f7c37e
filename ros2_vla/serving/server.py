"""An openpi-protocol policy server: any `infer(obs_map) -> reply_map` behind a WebSocket.

What openpi's own `WebsocketPolicyServer` does, so openpi's `WebsocketClientPolicy` and vla_node's
openpi backend both talk to it: metadata first, then one reply per observation with `actions` and
`server_timing` (`infer_ms`, and `prev_total_ms` from the second request on), a traceback as a text frame
and a close with 1011 when inference fails, and `GET /healthz` answered 200.

Several robots may share one server (one GPU). Inference runs on one worker thread, one request at a
time, in arrival order: requests wait on a FIFO lock, and since each client has at most one request in
flight (the protocol is request/reply), no client can take two turns while another waits.
"""

from __future__ import annotations

import asyncio
import http
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ros2_vla.serving.protocol import API_KEY_HEADER, API_KEY_PREFIX, ERROR_CLOSE_CODE, HEALTH_PATH, pack, unpack

Infer = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class PolicyServer:
    """Serve `infer` on host:port (port 0: any free port, read `port` after `start`)."""

    infer: Infer
    metadata: dict[str, Any]
    host: str = "0.0.0.0"
    port: int = 8000
    api_key: str = ""  # when set, connections must send `Authorization: Api-Key <key>`
    log: Callable[[str], None] = print
    requests: int = field(default=0, init=False)  # observations answered, for reports
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    # --- the protocol ---------------------------------------------------------------------------------
    def _process_request(self, connection: Any, request: Any) -> Any:
        if request.path == HEALTH_PATH:
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self.api_key and request.headers.get(API_KEY_HEADER) != API_KEY_PREFIX + self.api_key:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    async def _serve_client(self, websocket: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        peer = websocket.remote_address
        self.log(f"client {peer} connected")
        try:
            await self._answer(websocket, peer)
        except ConnectionClosed as exc:  # a client that went away without a close frame (killed, unplugged)
            self.log(f"client {peer} gone: {exc}")

    async def _answer(self, websocket: Any, peer: Any) -> None:
        await websocket.send(pack(self.metadata))
        prev_total_ms: float | None = None
        async for message in websocket:
            start = time.monotonic()
            try:
                async with self._turn:  # FIFO: requests are answered in the order they arrived
                    infer_start = time.monotonic()
                    reply = await self._loop.run_in_executor(self._worker, self.infer, unpack(message))
            except Exception:
                self.log(f"client {peer}: inference failed\n{traceback.format_exc()}")
                await websocket.send(traceback.format_exc())
                await websocket.close(code=ERROR_CLOSE_CODE, reason="Internal server error")
                return
            timing = {"infer_ms": 1e3 * (time.monotonic() - infer_start)}
            if prev_total_ms is not None:
                timing["prev_total_ms"] = prev_total_ms
            await websocket.send(pack({**reply, "server_timing": timing}))
            self.requests += 1
            prev_total_ms = 1e3 * (time.monotonic() - start)
        self.log(f"client {peer} disconnected")

    async def _main(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        self._loop, self._stop, self._turn = asyncio.get_running_loop(), asyncio.Event(), asyncio.Lock()
        async with serve(
            self._serve_client,
            self.host,
            self.port,
            compression=None,
            max_size=None,
            process_request=self._process_request,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()

    # --- running it -----------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run in this thread until `stop()` (from another thread) or Ctrl-C."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        try:
            asyncio.run(self._main(threading.Event()))
        finally:
            self._worker.shutdown(wait=False, cancel_futures=True)

    def start(self, timeout: float = 10.0) -> PolicyServer:
        """Serve on a background thread; returns once the port is bound (OSError if it cannot be)."""
        ready, failure = threading.Event(), []

        def run() -> None:
            try:
                asyncio.run(self._main(ready))
            except Exception as exc:  # e.g. the port is taken: hand it to the caller
                failure.append(exc)
                ready.set()

        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the policy server did not bind {self.host}:{self.port} within {timeout} s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._worker.shutdown(wait=False, cancel_futures=True)
