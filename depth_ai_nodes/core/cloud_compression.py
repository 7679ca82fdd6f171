"""point_cloud_transport's zstd and zlib formats, byte for byte, ROS-free.

A point_cloud_interfaces/CompressedPointCloud2 carries a PointCloud2's header, size, fields and
steps unchanged, its `data` compressed whole into `compressed_data`, and in `format` the name of
the plugin that wrote it:
- "zstd" (zstd_point_cloud_transport): one zstd frame (ZSTD_compressCCtx) that records the
  content size; its subscriber refuses frames without one.
- "zlib" (zlib_point_cloud_transport): deflate in the gzip wrapper (deflateInit2 with window bits
  15 + 16); its subscriber inflates with header auto-detection, so a zlib-wrapped stream is read too.

Why: a 128x2048 LiDAR scan is 6.3 MB, more than Fast DDS repairs at 10 Hz over a lossy link
(bench/bench_dds_sample_size.py); zstd makes the built-in scene's 2.1 MB, a real sensor's about
1.35-1.65x smaller (bench/bench_compression.py). Decoders check everything a corrupt
or hostile message could break (a frame that claims gigabytes, a truncated stream, a size that
disagrees with the cloud's own description) and raise `core.rejection.Rejected` with the reason.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .rejection import Reason, Rejected

__all__ = ["FORMATS", "LEVELS", "check_level", "require", "encode", "decode", "expected_size", "round_coordinates",
           "MAX_CLOUD_BYTES"]

FORMATS = ("zstd", "zlib")
# accepted compression levels per format (zstd's fast negative levels included)
LEVELS = {"zstd": (-7, 22), "zlib": (-1, 9)}
# largest decompressed cloud accepted (a 128x2048 scan is 6.3 MB; 1 GB would be absurd)
MAX_CLOUD_BYTES = 512 * 1024 * 1024
_GZIP_OR_ZLIB = 15 + 32    # inflate window bits: detect a gzip or zlib header


def check_level(fmt: str, level: int) -> None:
    """ValueError naming the valid range when `level` does not suit `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"point cloud compression {fmt!r}: use {' or '.join(FORMATS)}")
    lo, hi = LEVELS[fmt]
    if not lo <= level <= hi:
        raise ValueError(f"{fmt} level {level}: use {lo}..{hi}")


def require(fmt: str) -> None:
    """ImportError saying what to install when `fmt`'s codec library is missing (zstd needs
    the `zstandard` module; zlib is in Python), so a node says so at start-up, not per scan."""
    if fmt == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError as err:
            raise ImportError("zstd needs the zstandard module: `pip install zstandard` or "
                              "`sudo apt install python3-zstandard`") from err


def encode(data: bytes | memoryview, fmt: str, level: int) -> bytes:
    """A PointCloud2's `data` -> `compressed_data` as the `fmt` plugin writes it."""
    check_level(fmt, level)
    if fmt == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)
    comp = zlib.compressobj(level, zlib.DEFLATED, 15 + 16)   # gzip wrapper, as the plugin's
    return comp.compress(data) + comp.flush()


def round_coordinates(data: bytes | memoryview, point_step: int, offsets: tuple[int, ...],
                      resolution: float) -> np.ndarray:
    """A copy of a cloud's `data` whose little-endian float32 fields at `offsets` (x, y, z) are
    rounded to the largest power-of-two step not above `resolution` (m): the error stays within
    half of it, and the step clears the floats' low mantissa bits, which no lossless coder can
    shrink otherwise (real scans: 1.35-1.46x -> 1.74-1.77x with zstd at 2^-10 m, ~1 mm;
    bench/bench_compression.py). Still a plain PointCloud2 data buffer."""
    if not resolution > 0:
        raise ValueError(f"resolution must be > 0 m; got {resolution}")
    step = np.float32(2.0 ** math.floor(math.log2(resolution)))
    raw = np.frombuffer(data, np.uint8)
    n = raw.size // point_step
    out = raw[: n * point_step].copy().reshape(n, point_step)
    for off in offsets:
        if off + 4 > point_step:
            raise ValueError(f"field offset {off} does not fit in point_step {point_step}")
        col = out[:, off:off + 4].view("<f4")
        np.multiply(np.round(col / step), step, out=col)
    tail = raw[n * point_step:]   # bytes past the last whole point (none in a well-formed cloud)
    return out.reshape(-1) if tail.size == 0 else np.concatenate([out.reshape(-1), tail])


def expected_size(height: int, width: int, point_step: int, row_step: int) -> int:
    """Bytes of `data` a cloud of this description holds: row_step * height (row_step at least
    width * point_step: some publishers leave it 0 for unorganized clouds)."""
    return max(int(row_step), int(width) * int(point_step)) * int(height)


def decode(fmt: str, payload: bytes | memoryview, size: int) -> bytes:
    """`compressed_data` written by the `fmt` plugin -> the `size` bytes of the cloud's data."""
    if fmt not in FORMATS:
        raise Rejected(Reason.UNSUPPORTED, f"CompressedPointCloud2 format {fmt!r}; this node reads "
                       f"{' and '.join(FORMATS)}")
    if size <= 0:
        raise Rejected(Reason.EMPTY, "CompressedPointCloud2 describes 0 bytes of points")
    if size > MAX_CLOUD_BYTES:
        raise Rejected(Reason.OUT_OF_RANGE, f"CompressedPointCloud2 describes {size} bytes of points "
                       f"(limit {MAX_CLOUD_BYTES})")
    if len(payload) == 0:
        raise Rejected(Reason.EMPTY, f"CompressedPointCloud2 ({fmt}) has no compressed_data")
    out = _zstd(payload, size) if fmt == "zstd" else _inflate(payload, size)
    if len(out) != size:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 ({fmt}) holds {len(out)} bytes of "
                       f"points; its description (row_step * height) says {size}")
    return out


def _zstd(payload: bytes | memoryview, size: int) -> bytes:
    import zstandard

    try:
        declared = zstandard.frame_content_size(payload)
    except zstandard.ZstdError as err:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zstd) is not a zstd frame: {err}") from None
    if declared < 0:
        raise Rejected(Reason.UNSUPPORTED, "CompressedPointCloud2 (zstd): the frame does not record its "
                       "size (a streaming frame; point_cloud_transport's zstd plugin refuses these too)")
    if declared != size:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zstd) frame holds {declared} bytes; "
                       f"the cloud's description (row_step * height) says {size}")
    try:
        dctx = zstandard.ZstdDecompressor()
        obj = dctx.decompressobj()
        out = obj.decompress(payload)
        if not obj.eof:
            raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zstd) is truncated: "
                           f"{len(payload)} bytes end inside the frame")
        return out
    except zstandard.ZstdError as err:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zstd) is corrupt: {err}") from None


def _inflate(payload: bytes | memoryview, size: int) -> bytes:
    obj = zlib.decompressobj(_GZIP_OR_ZLIB)
    try:
        out = obj.decompress(payload, size + 1)   # never more than one byte past the description
    except zlib.error as err:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zlib) is corrupt: {err}") from None
    if len(out) <= size and not obj.eof:
        raise Rejected(Reason.MALFORMED, f"CompressedPointCloud2 (zlib) is truncated: {len(payload)} "
                       f"bytes end inside the stream after {len(out)} bytes of points")
    return out
