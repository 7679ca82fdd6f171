"""Image buffers <-> numpy with cv_bridge semantics, ROS-free.

Why not cv_bridge: it is not on PyPI, and the fast paths matter (a zero-copy
``np.frombuffer`` view to read, ``bytes`` to write; see docs/core.md). The message side
lives in ``depth_ai_nodes.ros.conversions``, which calls into this module.

Depth follows REP-118: 16UC1 in millimetres with 0 = invalid, 32FC1 in metres with NaN = invalid.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ENCODINGS", "Encoding", "ImageFormatError", "decode", "encode", "encode_array", "convert",
           "encoding_of"]


class ImageFormatError(ValueError):
    """An image buffer that does not match its encoding, size or step."""


class Encoding(NamedTuple):
    channels: int
    dtype: np.dtype

    @property
    def pixel_bytes(self) -> int:
        return self.channels * np.dtype(self.dtype).itemsize


ENCODINGS: dict[str, Encoding] = {
    "mono8": Encoding(1, np.dtype(np.uint8)),
    "8UC1": Encoding(1, np.dtype(np.uint8)),
    "mono16": Encoding(1, np.dtype(np.uint16)),
    "16UC1": Encoding(1, np.dtype(np.uint16)),
    "16SC1": Encoding(1, np.dtype(np.int16)),
    "32FC1": Encoding(1, np.dtype(np.float32)),
    "8UC3": Encoding(3, np.dtype(np.uint8)),
    "rgb8": Encoding(3, np.dtype(np.uint8)),
    "bgr8": Encoding(3, np.dtype(np.uint8)),
    "rgba8": Encoding(4, np.dtype(np.uint8)),
    "bgra8": Encoding(4, np.dtype(np.uint8)),
    "8UC4": Encoding(4, np.dtype(np.uint8)),
}


def _encoding(name: str) -> Encoding:
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ImageFormatError(f"unsupported image encoding {name!r}; supported: {', '.join(ENCODINGS)}") from None


def decode(encoding: str, height: int, width: int, step: int, data: bytes | bytearray | memoryview | np.ndarray,
           is_bigendian: bool = False) -> np.ndarray:
    """Buffer -> (H, W) or (H, W, C) array.

    A zero-copy view of ``data`` when the data is little-endian (a strided view when rows are
    padded); a byte-swapped copy for big-endian multi-byte data. The view is read-only when
    ``data`` is immutable (bytes); copy it before writing.
    """
    enc = _encoding(encoding)
    height, width, step = int(height), int(width), int(step)
    if height < 0 or width < 0:
        raise ImageFormatError(f"image size must be non-negative; got {width}x{height}")
    row = width * enc.pixel_bytes
    if step < row:
        raise ImageFormatError(f"{encoding} image step {step} is smaller than width*bytes_per_pixel = "
                               f"{width}*{enc.pixel_bytes} = {row}")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    if buf.size != step * height:
        raise ImageFormatError(f"{encoding} image data has {buf.size} bytes; expected step*height = "
                               f"{step}*{height} = {step * height}")
    dtype = enc.dtype.newbyteorder(">" if is_bigendian else "<")
    itemsize = dtype.itemsize
    if height == 0 or width == 0:
        arr = np.zeros((height, width, enc.channels) if enc.channels > 1 else (height, width), enc.dtype)
        return arr
    if step % itemsize == 0 and step == row:
        arr = buf.view(dtype).reshape(height, width, enc.channels)
    elif step % itemsize == 0:
        arr = buf.view(dtype).reshape(height, step // itemsize)[:, : width * enc.channels]
        arr = arr.reshape(height, width, enc.channels)
    else:
        # odd step for a multi-byte type: strided view over the raw bytes
        arr = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
        arr = np.ascontiguousarray(arr).view(dtype).reshape(height, width, enc.channels)
    if enc.channels == 1:
        arr = arr[:, :, 0]
    if dtype.byteorder == ">" and itemsize > 1:
        arr = arr.astype(enc.dtype)  # native order copy
    return arr


def encoding_of(array: np.ndarray) -> str:
    """Default encoding for an array (cv_bridge 'passthrough' guess): uint8 HxW -> mono8, HxWx3 -> rgb8 ..."""
    a = np.asarray(array)
    ch = 1 if a.ndim == 2 else a.shape[2]
    for name in ("mono8", "mono16", "16SC1", "32FC1", "rgb8", "rgba8"):
        e = ENCODINGS[name]
        if e.channels == ch and e.dtype == a.dtype:
            return name
    raise ImageFormatError(f"no image encoding for an array of dtype {a.dtype} with {ch} channels")


def encode_array(array: np.ndarray, encoding: str) -> np.ndarray:
    """Array -> the (H, W) or (H, W, C) native-order array a message carries (the input itself
    when it already is one; only a big-endian input is copied).

    The array's dtype and channel count must match the encoding exactly (no silent casts:
    a float depth published as 16UC1 is a bug, not a conversion).
    """
    enc = _encoding(encoding)
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1 and enc.channels == 1:
        a = a[:, :, 0]
    ch = 1 if a.ndim == 2 else (a.shape[2] if a.ndim == 3 else -1)
    if a.ndim not in (2, 3) or ch != enc.channels:
        dims = "" if enc.channels == 1 else f", {enc.channels}"
        raise ImageFormatError(f"{encoding} needs an array of shape (H, W{dims})"
                               f"; got shape {a.shape}")
    if a.dtype.newbyteorder("=") != enc.dtype.newbyteorder("="):
        raise ImageFormatError(f"{encoding} needs dtype {enc.dtype}; got {a.dtype} (convert it explicitly)")
    if a.dtype.byteorder == ">":
        a = a.astype(enc.dtype)
    return a


def encode(array: np.ndarray, encoding: str) -> tuple[int, int, int, bytes]:
    """Array -> (height, width, step, data bytes), little-endian, tight rows (see encode_array)."""
    a = encode_array(array, encoding)
    h, w = a.shape[:2]
    return h, w, w * ENCODINGS[encoding].pixel_bytes, a.tobytes()


_COLOR_ORDER = {"rgb8": "RGB", "bgr8": "BGR", "rgba8": "RGBA", "bgra8": "BGRA", "8UC3": "BGR", "8UC4": "BGRA"}
_MONO8 = ("mono8", "8UC1")


def convert(array: np.ndarray, from_encoding: str, to_encoding: str) -> np.ndarray:
    """Convert between encodings the way cv_bridge does for the cases the project uses.

    Colour: any of rgb8/bgr8/rgba8/bgra8/mono8 to another (mono by ITU-R 601 luma, alpha 255).
    Depth: 16UC1 (mm, 0 invalid) <-> 32FC1 (m, NaN invalid) per REP-118; mono16 <-> 16UC1 as is.
    Returns the input itself when the encodings are equal.
    """
    src, dst = _encoding(from_encoding), _encoding(to_encoding)
    a = np.asarray(array)
    if from_encoding == to_encoding:
        return a
    if from_encoding in ("16UC1", "mono16") and to_encoding == "32FC1":
        out = a.astype(np.float32) * np.float32(0.001)
        out[a == 0] = np.nan
        return out
    if from_encoding == "32FC1" and to_encoding in ("16UC1", "mono16"):
        with np.errstate(invalid="ignore"):
            mm = np.rint(a.astype(np.float64) * 1000.0)
            bad = ~np.isfinite(mm) | (mm <= 0) | (mm > 65535)
        return np.where(bad, 0, mm).astype(np.uint16)
    if {from_encoding, to_encoding} <= {"16UC1", "mono16"} or {from_encoding, to_encoding} <= set(_MONO8):
        return a
    if from_encoding in ("mono16", "16UC1") and to_encoding in _MONO8:
        return (a >> 8).astype(np.uint8)
    if from_encoding in _MONO8 and to_encoding in ("mono16", "16UC1"):
        return a.astype(np.uint16) << 8
    order_in = "L" if from_encoding in _MONO8 else _COLOR_ORDER.get(from_encoding)
    order_out = "L" if to_encoding in _MONO8 else _COLOR_ORDER.get(to_encoding)
    if order_in is None or order_out is None or src.dtype != np.uint8 or dst.dtype != np.uint8:
        raise ImageFormatError(f"no conversion from {from_encoding} to {to_encoding}")
    if order_in == "L":
        rgb = np.repeat(a[:, :, None], 3, axis=2)
    else:
        idx = [order_in.index(c) for c in "RGB"]
        rgb = a[:, :, idx]
    if order_out == "L":
        y = rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    out = np.empty((h, w, len(order_out)), np.uint8)
    for i, c in enumerate(order_out):
        if c == "A":
            out[:, :, i] = a[:, :, order_in.index("A")] if "A" in order_in else 255
        else:
            out[:, :, i] = rgb[:, :, "RGB".index(c)]
    return out
