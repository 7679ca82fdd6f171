"""Image buffers <-> numpy with cv_bridge semantics: every encoding, padding, endianness, errors."""
from __future__ import annotations

import numpy as np
import pytest

from depth_ai_nodes.core.image_codec import ENCODINGS, ImageFormatError, convert, decode, encode, encoding_of


def _sample(encoding: str, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    e = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (h, w) if e.channels == 1 else (h, w, e.channels)
    if e.dtype.kind == "f":
        return rng.uniform(0.1, 10.0, shape).astype(e.dtype)
    info = np.iinfo(e.dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(e.dtype)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    a = _sample(encoding)
    h, w, step, data = encode(a, encoding)
    assert isinstance(data, bytes) and (h, w) == a.shape[:2] and step == w * ENCODINGS[encoding].pixel_bytes
    b = decode(encoding, h, w, step, data)
    assert b.dtype == a.dtype and np.array_equal(b, a)
    assert np.shares_memory(b, np.frombuffer(data, np.uint8))  # zero-copy view


@pytest.mark.parametrize("encoding", ["mono8", "16UC1", "32FC1", "rgb8", "bgra8"])
def test_padded_step(encoding):
    a = _sample(encoding, 4, 5, seed=1)
    row = a.shape[1] * ENCODINGS[encoding].pixel_bytes
    for pad in (3, 8):  # odd padding (not a multiple of the item size) and aligned padding
        step = row + pad
        raw = np.full((a.shape[0], step), 0xAB, np.uint8)
        raw[:, :row] = np.frombuffer(a.tobytes(), np.uint8).reshape(a.shape[0], row)
        b = decode(encoding, a.shape[0], a.shape[1], step, raw.tobytes())
        assert np.array_equal(b, a), f"pad {pad}"


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "16SC1", "32FC1"])
def test_big_endian(encoding):
    a = _sample(encoding, seed=2)
    big = a.astype(a.dtype.newbyteorder(">")).tobytes()
    b = decode(encoding, a.shape[0], a.shape[1], a.shape[1] * a.itemsize, big, is_bigendian=True)
    assert np.array_equal(b, a) and b.dtype.isnative


def test_error_messages():
    with pytest.raises(ImageFormatError, match="unsupported image encoding 'yuv422'"):
        decode("yuv422", 2, 2, 4, b"\0" * 8)
    with pytest.raises(ImageFormatError, match=r"step 10 is smaller than width\*bytes_per_pixel = 8\*2 = 16"):
        decode("16UC1", 2, 8, 10, b"\0" * 20)
    with pytest.raises(ImageFormatError, match=r"has 31 bytes; expected step\*height = 16\*2 = 32"):
        decode("16UC1", 2, 8, 16, b"\0" * 31)
    with pytest.raises(ImageFormatError, match="needs dtype uint16; got float32"):
        encode(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ImageFormatError, match=r"rgb8 needs an array of shape \(H, W, 3\)"):
        encode(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ImageFormatError, match="no conversion from 32FC1 to rgb8"):
        convert(np.zeros((2, 2), np.float32), "32FC1", "rgb8")
    assert issubclass(ImageFormatError, ValueError)


def test_depth_conversion_rep118():
    mm = np.array([[0, 1, 1500], [65535, 250, 0]], np.uint16)
    m = convert(mm, "16UC1", "32FC1")
    assert m.dtype == np.float32 and np.isnan(m[0, 0]) and np.isnan(m[1, 2])
    assert np.allclose(m[0, 1:], [0.001, 1.5]) and np.isclose(m[1, 0], 65.535)
    back = convert(np.array([[np.nan, 0.0, -1.0, 1.2344, 70.0, np.inf]], np.float32), "32FC1", "16UC1")
    assert back.tolist() == [[0, 0, 0, 1234, 0, 0]]  # invalid, non-positive and out of range -> 0
    assert np.array_equal(convert(m, "32FC1", "16UC1"), mm)


def test_color_conversions():
    rgb = _sample("rgb8", seed=3)
    bgr = convert(rgb, "rgb8", "bgr8")
    assert np.array_equal(bgr, rgb[:, :, ::-1])
    rgba = convert(bgr, "bgr8", "rgba8")
    assert np.array_equal(rgba[:, :, :3], rgb) and (rgba[:, :, 3] == 255).all()
    assert np.array_equal(convert(rgba, "rgba8", "bgra8")[:, :, :3], bgr)
    mono = convert(rgb, "rgb8", "mono8")
    expect = np.clip(np.rint(rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114), 0, 255)
    assert np.array_equal(mono, expect.astype(np.uint8))
    assert np.array_equal(convert(mono, "mono8", "rgb8")[:, :, 1], mono)
    assert convert(rgb, "rgb8", "rgb8") is rgb


def test_encoding_of():
    assert encoding_of(np.zeros((2, 2), np.uint16)) == "mono16"
    assert encoding_of(np.zeros((2, 2, 3), np.uint8)) == "rgb8"
    assert encoding_of(np.zeros((2, 2), np.float32)) == "32FC1"
    with pytest.raises(ImageFormatError):
        encoding_of(np.zeros((2, 2), np.complex64))
