"""image_transport's compressed formats, byte for byte, ROS-free (Pillow + numba, no OpenCV).

`compressed` (compressed_image_transport): sensor_msgs/CompressedImage whose `format` is
"<encoding>; jpeg compressed bgr8" (colour; "...; png compressed bgr8|bgr16"), or
"<encoding>; jpeg compressed " for mono (empty target), and whose data is a plain JPEG/PNG
file (OpenCV writes BGR Mats as ordinary RGB files).

`compressedDepth` (compressed_depth_image_transport): `format` "<encoding>; compressedDepth
png|rvl"; data = a 12-byte ConfigHeader (int32 format, 0 = INV_DEPTH; float32 depthParam[2])
then, for 16UC1, the depth as a 16-bit PNG (or RVL) with depth beyond depth_max zeroed; for
32FC1, the quantized inverse depth q = A / d + B (A = z0 (z0 + 1), B = 1 - A / depth_max) as
16-bit PNG or RVL, and d = A / (q - B) back (0 = invalid, NaN). RVL is the plugin's codec:
[uint32 cols][uint32 rows] + little-endian 32-bit words of 4-bit variable-length nibbles
(zero runs, non-zero runs, zig-zag deltas), most significant nibble first.

Decoders validate everything a corrupt or hostile message could break and raise
`core.rejection.Rejected` with the reason.
"""
from __future__ import annotations

import io
import struct

import numpy as np
from numba import njit

from .rejection import Reason, Rejected

__all__ = ["encode_compressed", "decode_compressed", "encode_compressed_depth", "decode_compressed_depth",
           "rvl_encode", "rvl_decode", "CONFIG_HEADER"]

CONFIG_HEADER = struct.Struct("<iff")   # compressionFormat format; float depthParam[2]
INV_DEPTH = 0
COLOR = ("rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16")
MONO = ("mono8", "8UC1", "mono16", "16UC1")


# --- compressed (JPEG / PNG) -------------------------------------------------------------
def encode_compressed(image: np.ndarray, encoding: str, fmt: str = "jpeg", jpeg_quality: int = 95,
                      png_level: int = 3) -> tuple[str, bytes]:
    """An 8-bit colour or mono image -> (format string, JPEG/PNG bytes), as the
    compressed_image_transport publisher writes them."""
    from PIL import Image

    if fmt not in ("jpeg", "png"):
        raise ValueError(f"compressed format {fmt!r}: jpeg or png")
    a = np.asarray(image)
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        rgb = a[..., :3] if encoding.startswith("rgb") else a[..., 2::-1]
        pil, target = Image.fromarray(np.ascontiguousarray(rgb)), "bgr8"
    elif encoding in ("mono8", "8UC1"):
        pil, target = Image.fromarray(np.ascontiguousarray(a)), ""
    elif encoding in ("mono16", "16UC1") and fmt == "png":
        pil, target = Image.fromarray(np.ascontiguousarray(a.astype(np.uint16))), ""
    else:
        raise ValueError(f"compressed {fmt}: encoding {encoding} is not supported")
    buf = io.BytesIO()
    if fmt == "jpeg":
        pil.save(buf, "JPEG", quality=int(jpeg_quality))
    else:
        pil.save(buf, "PNG", compress_level=int(png_level))
    return f"{encoding}; {fmt} compressed {target}", buf.getvalue()


def parse_format(fmt: str) -> tuple[str, str, str]:
    """'rgb8; jpeg compressed bgr8' -> ('rgb8', 'jpeg', 'bgr8'); a bare 'jpeg' (old publishers)
    -> ('', 'jpeg', '')."""
    parts = fmt.split(";", 1)
    if len(parts) == 1:
        return "", parts[0].strip().lower(), ""
    encoding, rest = parts[0].strip(), parts[1].strip().split()
    if len(rest) < 2 or rest[1] not in ("compressed", "compressedDepth"):
        raise Rejected(Reason.UNSUPPORTED, f"CompressedImage format {fmt!r} is not '<encoding>; <jpeg|png> "
                       f"compressed [target]'")
    return encoding, rest[0].lower(), rest[2] if len(rest) > 2 else ""


def decode_compressed(fmt: str, data: bytes) -> tuple[str, np.ndarray]:
    """A compressed_image_transport message -> (encoding, array in that encoding). A colour
    image comes back as rgb8 unless the original encoding was bgr8."""
    from PIL import Image, UnidentifiedImageError

    encoding, codec, _target = parse_format(fmt)
    if codec not in ("jpeg", "jpg", "png"):
        raise Rejected(Reason.UNSUPPORTED, f"CompressedImage codec {codec!r} (format {fmt!r}): jpeg or png")
    if len(data) < 8:
        raise Rejected(Reason.EMPTY if not data else Reason.MALFORMED, f"CompressedImage has {len(data)} bytes")
    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im.convert("RGB") if mode not in ("L", "I;16", "I") else im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise Rejected(Reason.MALFORMED, f"CompressedImage {codec} data does not decode: {err}") from None
    if arr.ndim == 3:
        if encoding == "bgr8":
            return "bgr8", np.ascontiguousarray(arr[..., ::-1])
        return "rgb8", arr
    if arr.dtype != np.uint8:
        return (encoding if encoding in ("mono16", "16UC1") else "mono16"), arr.astype(np.uint16)
    return (encoding if encoding in ("mono8", "8UC1") else "mono8"), arr


# --- RVL ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _put(value: int, words: np.ndarray, w: int, word: np.uint32, nibbles: int) -> tuple:
    """EncodeVLE: 3 bits per nibble, the 4th says 'more'; 8 nibbles make a word."""
    while True:
        nib = value & 0x7
        value >>= 3
        if value:
            nib |= 0x8
        word = np.uint32((word << np.uint32(4)) | np.uint32(nib))
        nibbles += 1
        if nibbles == 8:
            words[w] = word
            w += 1
            nibbles = 0
            word = np.uint32(0)
        if not value:
            return w, word, nibbles


@njit(cache=True)
def _rvl_encode(src: np.ndarray, out: np.ndarray) -> int:
    """CompressRVL: returns the bytes written to out (uint32 words, little-endian)."""
    words = out.view(np.uint32)
    n = src.size
    w, word, nibbles = 0, np.uint32(0), 0
    i, prev = 0, 0
    while i < n:
        zeros = 0
        while i < n and src[i] == 0:
            zeros += 1
            i += 1
        w, word, nibbles = _put(zeros, words, w, word, nibbles)
        nonzeros = 0
        while i + nonzeros < n and src[i + nonzeros] != 0:
            nonzeros += 1
        w, word, nibbles = _put(nonzeros, words, w, word, nibbles)
        for _ in range(nonzeros):
            cur = int(src[i])
            i += 1
            delta = cur - prev
            w, word, nibbles = _put(((delta << 1) ^ (delta >> 31)) & 0xFFFFFFFF, words, w, word, nibbles)
            prev = cur
    if nibbles:
        words[w] = np.uint32(word << np.uint32(4 * (8 - nibbles)))
        w += 1
    return 4 * w


@njit(cache=True, inline="always")
def _get(words: np.ndarray, wi: int, word: np.uint32, nibbles: int) -> tuple:
    """DecodeVLE; value -1 when the stream ends or a value runs past 29 bits (corrupt)."""
    value, bits = 0, 29
    while True:
        if nibbles == 0:
            if wi >= words.size:
                return -1, wi, word, nibbles
            word = words[wi]
            wi += 1
            nibbles = 8
        nib = word & np.uint32(0xF0000000)
        value |= int((nib << np.uint32(1)) & np.uint32(0xFFFFFFFF)) >> bits
        word = np.uint32((word << np.uint32(4)) & np.uint32(0xFFFFFFFF))
        nibbles -= 1
        bits -= 3
        if not (nib & np.uint32(0x80000000)):
            return value, wi, word, nibbles
        if bits < 0:
            return -1, wi, word, nibbles


@njit(cache=True)
def _rvl_decode(words: np.ndarray, out: np.ndarray) -> int:
    """DecompressRVL with bounds checks: returns pixels written, or -1 when the stream runs
    out or overfills (a corrupt message must not read or write past its buffers)."""
    left = out.size
    wi, word, nibbles = 0, np.uint32(0), 0
    o, prev = 0, 0
    while left > 0:
        zeros, wi, word, nibbles = _get(words, wi, word, nibbles)
        if zeros < 0 or zeros > left:
            return -1
        left -= zeros
        for _ in range(zeros):
            out[o] = 0
            o += 1
        nonzeros, wi, word, nibbles = _get(words, wi, word, nibbles)
        if nonzeros < 0 or nonzeros > left:
            return -1
        left -= nonzeros
        for _ in range(nonzeros):
            pv, wi, word, nibbles = _get(words, wi, word, nibbles)
            if pv < 0:
                return -1
            cur = (prev + ((pv >> 1) ^ -(pv & 1))) & 0xFFFF
            out[o] = cur
            o += 1
            prev = cur
    return o


def rvl_encode(depth: np.ndarray) -> bytes:
    """uint16 (H, W) -> [uint32 cols][uint32 rows] + the RVL stream, as the plugin writes."""
    a = np.ascontiguousarray(depth, dtype=np.uint16)
    h, w = a.shape
    out = np.zeros(4 * ((3 * a.size + 12) // 4 + 1), np.uint8)  # worst case ~1.5x, whole words
    nbytes = _rvl_encode(a.reshape(-1), out)
    return struct.pack("<II", w, h) + out[:nbytes].tobytes()


def rvl_decode(data: bytes) -> np.ndarray:
    if len(data) < 8:
        raise Rejected(Reason.MALFORMED, f"RVL data has {len(data)} bytes, fewer than its 8-byte size header")
    cols, rows = struct.unpack_from("<II", data, 0)
    body = bytes(data[8:])
    n = rows * cols
    if rows == 0 or cols == 0:
        raise Rejected(Reason.EMPTY, f"RVL image is {cols}x{rows}")
    if n > (1 << 28) or n > 5 * max(len(data) - 8, 1) * 2:  # the plugin's own sanity bound (<= 10x)
        raise Rejected(Reason.MALFORMED, f"RVL header claims {cols}x{rows} pixels for {len(body)} bytes of data")
    body += b"\0" * ((-len(body)) % 4)
    out = np.empty(n, np.uint16)
    if _rvl_decode(np.frombuffer(body, "<u4"), out) != n:
        raise Rejected(Reason.MALFORMED, f"RVL stream is truncated or corrupt for a {cols}x{rows} image")
    return out.reshape(rows, cols)


# --- compressedDepth ------------------------------------------------------------------------
def _png16(a: np.ndarray, level: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a, dtype=np.uint16)).save(buf, "PNG", compress_level=int(level))
    return buf.getvalue()


def encode_compressed_depth(depth: np.ndarray, encoding: str, fmt: str = "png", depth_max: float = 10.0,
                            depth_quantization: float = 100.0, png_level: int = 1) -> tuple[str, bytes]:
    """16UC1 (mm) or 32FC1 (m) depth -> (format, ConfigHeader + PNG/RVL) as the
    compressed_depth_image_transport publisher writes it (its defaults: depth_max 10 m,
    depth_quantization 100, png_level 9; ours 1 for speed)."""
    if fmt not in ("png", "rvl"):
        raise ValueError(f"compressedDepth format {fmt!r}: png or rvl")
    a = np.asarray(depth)
    if encoding in ("16UC1", "mono16"):
        q = a.astype(np.uint16, copy=True)
        q[q > np.uint16(min(int(depth_max * 1000.0), 65535))] = 0
        header = CONFIG_HEADER.pack(INV_DEPTH, 0.0, 0.0)
    elif encoding == "32FC1":
        z0, dmax = np.float32(depth_quantization), np.float32(depth_max)
        qa = np.float32(z0 * (z0 + np.float32(1.0)))
        qb = np.float32(np.float32(1.0) - qa / dmax)
        d = a.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = qa / d + qb
        ok = d < dmax  # NaN compares false: invalid
        q = np.where(ok & np.isfinite(inv), np.clip(inv, 0, 65535), 0).astype(np.uint16)
        header = CONFIG_HEADER.pack(INV_DEPTH, float(qa), float(qb))
    else:
        raise ValueError(f"compressedDepth needs 16UC1 or 32FC1; got {encoding}")
    payload = _png16(q, png_level) if fmt == "png" else rvl_encode(q)
    return f"{encoding}; compressedDepth {fmt}", header + payload


def decode_compressed_depth(fmt: str, data: bytes) -> tuple[str, np.ndarray]:
    """A compressed_depth_image_transport message -> (encoding, uint16 mm or float32 m)."""
    from PIL import Image, UnidentifiedImageError

    encoding = fmt.split(";", 1)[0].strip()
    rest = fmt[len(encoding):]
    if "compressedDepth rvl" in rest:
        codec = "rvl"
    elif "compressedDepth png" in rest or ";" not in fmt or ("compressedDepth" in rest and "compressedDepth " not in rest):
        codec = "png"
    else:
        raise Rejected(Reason.UNSUPPORTED, f"compressedDepth format {fmt!r}: '<encoding>; compressedDepth png|rvl'")
    if encoding not in ("16UC1", "mono16", "32FC1"):
        raise Rejected(Reason.UNSUPPORTED, f"compressedDepth encoding {encoding!r}: 16UC1 or 32FC1")
    if len(data) <= CONFIG_HEADER.size:
        raise Rejected(Reason.MALFORMED, f"compressedDepth data has {len(data)} bytes: no room for the "
                       f"{CONFIG_HEADER.size}-byte ConfigHeader and an image")
    _fmt, qa, qb = CONFIG_HEADER.unpack_from(data, 0)
    body = bytes(data[CONFIG_HEADER.size:])
    if codec == "rvl":
        q = rvl_decode(body)
    else:
        try:
            with Image.open(io.BytesIO(body)) as im:
                im.load()
                q = np.asarray(im)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise Rejected(Reason.MALFORMED, f"compressedDepth PNG does not decode: {err}") from None
        if q.ndim != 2:
            raise Rejected(Reason.MALFORMED, f"compressedDepth PNG has shape {q.shape}; a single 16-bit channel is needed")
        q = q.astype(np.uint16)
    if encoding != "32FC1":
        return encoding, q
    if not (np.isfinite(qa) and np.isfinite(qb)) or qa == 0:
        raise Rejected(Reason.MALFORMED, f"compressedDepth 32FC1 header has quantization ({qa}, {qb})")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.float32(qa) / (q.astype(np.float32) - np.float32(qb))
    d[q == 0] = np.nan
    return encoding, d.astype(np.float32)
