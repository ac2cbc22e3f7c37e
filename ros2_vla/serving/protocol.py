"""openpi's WebSocket policy protocol: what travels, and how arrays are packed.

Facts of the protocol (Physical-Intelligence/openpi, `serving/websocket_policy_server.py` and
`packages/openpi-client`): a plain WebSocket, no compression, no size limit, port 8000 by default,
`GET /healthz` answers 200. On connect the server sends its metadata (a msgpack map) first. Then every
client frame is a msgpack observation map and every reply a msgpack map holding `actions` (H, D) and
`server_timing` ({"infer_ms", and "prev_total_ms" after the first}). A failed inference arrives as a
text frame holding the traceback, then a close with code 1011. Arrays travel as maps
`{__ndarray__: True, data, dtype, shape}` (numpy scalars `__npgeneric__`): openpi-client's
`msgpack_numpy`, used here as is so both ends pack exactly as openpi does. An optional
`Authorization: Api-Key <key>` header carries an API key.
"""

from __future__ import annotations

from typing import Any

from openpi_client import msgpack_numpy

DEFAULT_PORT = 8000
HEALTH_PATH = "/healthz"
ERROR_CLOSE_CODE = 1011  # "internal error": the server failed while answering
API_KEY_HEADER = "Authorization"
API_KEY_PREFIX = "Api-Key "


def pack(data: dict[str, Any]) -> bytes:
    """A map of arrays, numbers and strings as openpi's msgpack bytes."""
    return msgpack_numpy.packb(data)


def unpack(frame: bytes) -> Any:
    """openpi's msgpack bytes back to Python, arrays as (read-only) numpy arrays."""
    return msgpack_numpy.unpackb(frame)


def parse_address(server: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """'host:port', 'host', or 'ws://host:port' -> (host, port); ValueError for anything else."""
    text = server.strip()
    for scheme in ("ws://", "wss://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    text = text.rstrip("/")
    if not text:
        raise ValueError("empty server address: give host:port, e.g. localhost:8000")
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"server address {server!r} is not host:port")
    return host.strip("[]"), int(port)
