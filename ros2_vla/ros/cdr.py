"""rclpy messages as the CDR bytes a bag holds, serialized by rosbags (the bag readers' own serializer).

Why not `rclpy.serialization.serialize_message`: Fast CDR aligns an empty float64 sequence to 8 bytes
even though no element follows, so a JointState without efforts ends in 4 to 8 padding bytes more than
its CDR length, and a strict reader (`rosbags`, hence `ros2-vla convert`) refuses it as a size mismatch.
What a DDS subscriber receives has no such tail. Messages are built with the nodes' own builders
(`ros2_vla.ros.convert`) and copied field by field into the type store's classes.
"""

from __future__ import annotations

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys.store import Typestore

from ros2_vla.data.typestore import typestore

_NUMPY = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def to_cdr(msg, msgtype: str) -> bytes:
    """`msg` (an rclpy message of `msgtype`, "pkg/msg/Name") as little-endian CDR with its encapsulation header."""
    store = typestore()
    return bytes(store.serialize_cdr(_copy(msg, msgtype, store), msgtype))


def _copy(msg, msgtype: str, store: Typestore):
    _, fields = store.fielddefs[msgtype]
    return store.types[msgtype](**{name: _value(getattr(msg, name), desc, store) for name, desc in fields})


def _value(value, desc, store: Typestore):
    kind, detail = desc
    if kind == Nodetype.NAME:
        return _copy(value, detail, store)
    if kind not in (Nodetype.SEQUENCE, Nodetype.ARRAY):
        return value  # a number or a string
    (sub_kind, sub_detail), _ = detail
    if sub_kind == Nodetype.NAME:
        return [_copy(v, sub_detail, store) for v in value]
    if sub_detail[0] in _NUMPY:
        dtype = _NUMPY[sub_detail[0]]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return np.frombuffer(value, dtype=dtype)
        return np.asarray(value, dtype=dtype)
    return list(value)  # strings
