"""The pickle-free wire codec of :mod:`engines.shared.protocol`, and the message base classes it registers.

Wire format of one message (one ``Connection.send_bytes`` frame)::

    b"LSM1" | uint32 little-endian header length | header (UTF-8 JSON) | raw array bytes ...

The header is ``{"type": "Decode", "fields": {...}, "arrays": [{"field", "dtype", "shape"}]}``;
array bytes follow in that order, C-contiguous, little-endian. Only numeric and bool dtypes are
accepted, so no object arrays and no pickle can cross the boundary in either direction.

A field may also hold a typed value (:class:`~engines.shared.datainfo.DataInfo`,
:class:`~engines.shared.spec.LatentSpec`, :class:`~engines.shared.capabilities.Capabilities`, ...),
or a list of them: any class registered with :func:`wire_value` that has ``to_json`` and a
``from_json`` classmethod. It travels as ``{"$value": "ClassName", "json": ...}`` and is rebuilt by
that class's ``from_json`` only, so the header names data, never code to run.

Split from :mod:`engines.shared.protocol` (which re-exports every name here) to keep both files short.
This module imports numpy and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from typing import Any, ClassVar

import numpy as np

from engines.shared.errors import ProtocolError

MAGIC = b"LSM1"
#: Most dimensions an array in a frame may have (numpy's own limit is 64).
MAX_NDIM = 8
_ALLOWED_DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "float16", "float32", "float64"}
#: Largest frame either side accepts, in bytes (a 64-image 64x64 RGB float32 grid is 3 MB).
MAX_FRAME_BYTES = 512 * 1024 * 1024

_REGISTRY: dict[str, type[Message]] = {}
_VALUES: dict[str, type] = {}
_VALUE_KEY = "$value"


def wire_value(cls: type) -> type:
    """Register ``cls`` (with ``to_json()`` and ``from_json(json)``) as a value a message field may hold."""
    _VALUES[cls.__name__] = cls
    return cls


def _to_wire(value: Any) -> Any:
    if type(value).__name__ in _VALUES and type(value) is _VALUES[type(value).__name__]:
        return {_VALUE_KEY: type(value).__name__, "json": value.to_json()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


def _from_wire(value: Any, where: str) -> Any:
    if isinstance(value, dict) and _VALUE_KEY in value:
        cls = _VALUES.get(value[_VALUE_KEY]) if isinstance(value[_VALUE_KEY], str) else None
        if cls is None or set(value) != {_VALUE_KEY, "json"}:
            raise ProtocolError(f"{where}: unknown value type {value.get(_VALUE_KEY)!r}")
        try:
            return cls.from_json(value["json"])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ProtocolError(f"{where}: malformed {cls.__name__} ({exc})") from None
    if isinstance(value, list):
        return [_from_wire(v, where) for v in value]
    return value


class Message:
    """Base of commands and events; subclasses are frozen dataclasses registered by name."""

    kind: ClassVar[str] = "message"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls


class Command(Message):
    """A request from the window to the worker."""

    kind = "command"


class Event(Message):
    """A report from the worker to the window."""

    kind = "event"


# --------------------------------------------------------------------------------------------
# Codec
# --------------------------------------------------------------------------------------------


def message_types() -> dict[str, type[Message]]:
    """Every concrete (dataclass) message class by name."""
    return {name: cls for name, cls in _REGISTRY.items() if dataclasses.is_dataclass(cls)}


def encode(message: Message) -> bytes:
    """Encode a message to one frame (see the module docstring).

    Raises
    ------
    ProtocolError
        If a field is neither JSON-able nor a numeric numpy array.
    """
    if not dataclasses.is_dataclass(message) or type(message).__name__ not in _REGISTRY:
        raise ProtocolError(f"not a protocol message: {type(message).__name__}")
    fields_json: dict[str, Any] = {}
    arrays: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if isinstance(value, np.ndarray):
            if value.dtype.name not in _ALLOWED_DTYPES:
                raise ProtocolError(f"{type(message).__name__}.{f.name}: dtype {value.dtype} cannot be sent")
            a = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
            # value.shape, not a.shape: ascontiguousarray turns a 0-d array into shape (1,)
            arrays.append({"field": f.name, "dtype": a.dtype.name, "shape": list(value.shape)})
            buffers.append(a.tobytes())
        else:
            fields_json[f.name] = _to_wire(value)
    try:
        header = json.dumps(
            {"type": type(message).__name__, "fields": fields_json, "arrays": arrays},
            allow_nan=True, separators=(",", ":"),
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{type(message).__name__}: a field is not JSON-able ({exc})") from None
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *buffers])


def decode(frame: bytes | bytearray | memoryview) -> Message:
    """Decode one frame made by :func:`encode`.

    Raises
    ------
    ProtocolError
        On a pickle stream, a wrong magic number, a truncated or oversized frame, an unknown
        message type or field, an array whose dtype, rank (at most :data:`MAX_NDIM`) or size does not
        match its bytes, or a header nested absurdly deep. Never anything else, whatever the bytes.
    """
    try:
        return _decode(frame)
    except RecursionError:
        raise ProtocolError("malformed frame: nested absurdly deep") from None


def _decode(frame: bytes | bytearray | memoryview) -> Message:
    buf = memoryview(frame).cast("B")
    if len(buf) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(buf)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    if len(buf) >= 1 and buf[0] == 0x80:
        raise ProtocolError("refusing a pickle stream: the protocol only accepts JSON + raw arrays")
    if len(buf) < 8 or bytes(buf[:4]) != MAGIC:
        raise ProtocolError("not a Latent Studio frame (bad magic number)")
    (hlen,) = struct.unpack("<I", buf[4:8])
    if 8 + hlen > len(buf):
        raise ProtocolError(f"truncated frame: header of {hlen} bytes but only {len(buf) - 8} follow")
    try:
        header = json.loads(bytes(buf[8 : 8 + hlen]).decode("utf-8"))
        type_name = header["type"]
        fields_json = dict(header["fields"])
        arrays = list(header["arrays"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed frame header ({exc})") from None
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None or not dataclasses.is_dataclass(cls):  # the bases Command and Event are not messages
        raise ProtocolError(f"unknown message type {type_name!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    offset = 8 + hlen
    for spec in arrays:
        try:
            name, dtype_name, shape = spec["field"], spec["dtype"], tuple(int(s) for s in spec["shape"])
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(f"{type_name}: malformed array description {spec!r}") from None
        if dtype_name not in _ALLOWED_DTYPES or len(shape) > MAX_NDIM or any(s < 0 for s in shape):
            raise ProtocolError(f"{type_name}.{name}: refusing dtype {dtype_name!r} or shape {shape[:MAX_NDIM + 1]}")
        dtype = np.dtype(dtype_name).newbyteorder("<")
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a product that would wrap in int64 cannot
        if offset + nbytes > len(buf):
            raise ProtocolError(f"{type_name}.{name}: array of {nbytes} bytes but the frame is truncated")
        fields_json[name] = np.frombuffer(buf[offset : offset + nbytes], dtype=dtype).reshape(shape).astype(
            dtype.newbyteorder("="), copy=True
        )
        offset += nbytes
    if offset != len(buf):
        raise ProtocolError(f"{type_name}: {len(buf) - offset} trailing bytes after the last array")
    unknown = set(fields_json) - names
    if unknown:
        raise ProtocolError(f"{type_name}: unknown fields {sorted(unknown)}")
    fields_json = {k: _from_wire(v, f"{type_name}.{k}") if not isinstance(v, np.ndarray) else v
                   for k, v in fields_json.items()}
    try:
        return cls(**fields_json)
    except TypeError as exc:
        raise ProtocolError(f"{type_name}: {exc}") from None
