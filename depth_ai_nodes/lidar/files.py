"""Point files as a LiDAR source: a folder (or glob) of `.bin` records and/or `.pcd` files,
played at rate_hz, looping if asked. ROS-free.

- `.bin`: packed little-endian float32 records whose fields `bin_fields` names in order
  (KITTI: x,y,z,intensity; nuScenes: x,y,z,intensity,ring; `_` skips a field).
- `.pcd`: the PCL format, DATA ascii, binary or binary_compressed (LZF), any FIELDS / SIZE /
  TYPE / COUNT; organised clouds come flat.
Fields the file lacks are filled: intensity NaN, ring 0, t 0 (no per-point time: no motion
compensation). A field called time / timestamp / offset_time is taken as t when it is a
per-point offset (|t| <= 1 s; ns when integer).
"""
from __future__ import annotations

import glob as globlib
import time
from pathlib import Path

import numpy as np
from numba import njit

from .base import LidarScan, Playlist, SourceError

_TIME_NAMES = ("t", "time", "timestamp", "offset_time")


def read_bin(path: str | Path, fields: list[str]) -> dict[str, np.ndarray]:
    raw = np.fromfile(path, dtype="<f4")
    k = len(fields)
    if k == 0 or raw.size % k:
        raise SourceError(f"{path}: {raw.size * 4} bytes are not whole records of {k} float32 fields "
                          f"({','.join(fields)}); set bin_fields to the file's layout")
    a = raw.reshape(-1, k)
    return {name: np.ascontiguousarray(a[:, i]) for i, name in enumerate(fields) if name != "_"}


_PCD_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4",
              ("U", 8): "<u8", ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8"}


@njit(cache=True)
def _lzf_decompress(src: np.ndarray, out: np.ndarray) -> int:
    """liblzf's format, as PCL writes it: a control byte < 32 starts a literal run of
    ctrl + 1 bytes; otherwise a back reference (length ctrl >> 5, + the next byte when 7)."""
    i, o = 0, 0
    n, m = src.size, out.size
    while i < n:
        ctrl = int(src[i])
        i += 1
        if ctrl < 32:
            length = ctrl + 1
            if i + length > n or o + length > m:
                return -1
            out[o:o + length] = src[i:i + length]
            i += length
            o += length
        else:
            length = ctrl >> 5
            if length == 7:
                if i >= n:
                    return -1
                length += int(src[i])
                i += 1
            if i >= n:
                return -1
            ref = o - ((ctrl & 0x1F) << 8) - int(src[i]) - 1
            i += 1
            length += 2
            if ref < 0 or o + length > m:
                return -1
            for _ in range(length):  # byte by byte: the reference may overlap the output
                out[o] = out[ref]
                o += 1
                ref += 1
    return o


def read_pcd(path: str | Path) -> dict[str, np.ndarray]:
    data = Path(path).read_bytes()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise SourceError(f"{path}: PCD header has no DATA line")
        line = data[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
        if key.upper() == "DATA":
            break
    try:
        names = header["FIELDS"]
        sizes = [int(v) for v in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(v) for v in header.get("COUNT", ["1"] * len(names))]
        n = int(header["POINTS"][0]) if "POINTS" in header else int(header["WIDTH"][0]) * int(header["HEIGHT"][0])
        kind = header["DATA"][0].lower()
        dtypes = [np.dtype(_PCD_TYPES[(t.upper(), s)]) for t, s in zip(types, sizes)]
    except (KeyError, ValueError, IndexError) as err:
        raise SourceError(f"{path}: PCD header incomplete or unsupported ({err})") from None
    if not (len(names) == len(sizes) == len(types) == len(counts)):
        raise SourceError(f"{path}: PCD FIELDS, SIZE, TYPE and COUNT differ in length")
    cols: dict[str, np.ndarray] = {}
    if kind == "ascii":
        table = np.loadtxt(data[pos:].decode("ascii").splitlines(), dtype=np.float64, ndmin=2)[:n]
        c = 0
        for name, cnt, dt in zip(names, counts, dtypes):
            cols[name] = table[:, c].astype(dt) if cnt == 1 else table[:, c:c + cnt].astype(dt)
            c += cnt
    elif kind == "binary":
        rec = np.dtype([(f"f{i}", dt, (cnt,)) if cnt > 1 else (f"f{i}", dt)
                        for i, (dt, cnt) in enumerate(zip(dtypes, counts))])
        arr = np.frombuffer(data, dtype=rec, count=n, offset=pos)
        cols = {name: np.ascontiguousarray(arr[f"f{i}"]) for i, name in enumerate(names)}
    elif kind == "binary_compressed":
        csize, usize = np.frombuffer(data, "<u4", 2, pos)
        buf = np.empty(int(usize), np.uint8)
        if _lzf_decompress(np.frombuffer(data, np.uint8, int(csize), pos + 8), buf) != usize:
            raise SourceError(f"{path}: corrupt binary_compressed PCD data")
        off = 0
        for name, cnt, dt in zip(names, counts, dtypes):  # field-major: all x, then all y ...
            nbytes = n * cnt * dt.itemsize
            a = buf[off:off + nbytes].view(dt)
            cols[name] = a.reshape(n, cnt) if cnt > 1 else a.copy()
            off += nbytes
    else:
        raise SourceError(f"{path}: PCD DATA {kind!r} is not ascii, binary or binary_compressed")
    return cols


def to_scan_fields(cols: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Any named columns -> lidar_node's fields (x y z intensity t ring), filling what is missing."""
    missing = [k for k in ("x", "y", "z") if k not in cols]
    if missing:
        raise SourceError(f"{where}: no {', '.join(missing)} field (has {', '.join(cols) or 'none'})")
    n = cols["x"].shape[0]
    out = {k: np.ascontiguousarray(cols[k], dtype=np.float32).reshape(-1) for k in ("x", "y", "z")}
    inten = next((cols[k] for k in ("intensity", "reflectance", "i") if k in cols), None)
    out["intensity"] = np.full(n, np.nan, np.float32) if inten is None else inten.astype(np.float32).reshape(-1)
    t = np.zeros(n, np.float32)
    for k in _TIME_NAMES:
        if k in cols:
            v = cols[k].reshape(-1)
            v = v.astype(np.float64) * 1e-9 if v.dtype.kind in "iu" else v.astype(np.float64)
            if v.size and np.all(np.isfinite(v)) and np.abs(v).max() <= 1.0:
                t = v.astype(np.float32)
            break
    out["t"] = t
    ring = next((cols[k] for k in ("ring", "channel", "laser_id") if k in cols), None)
    out["ring"] = np.zeros(n, np.uint16) if ring is None else ring.reshape(-1).astype(np.uint16)
    return out


class PointFileSource:
    def __init__(self, path: str, bin_fields: str = "x,y,z,intensity", rate_hz: float = 10.0,
                 loop: bool = True, frame_id: str = "lidar_link", real_time: bool = True) -> None:
        p = Path(path).expanduser()
        names = sorted(p.glob("*")) if p.is_dir() else sorted(Path(f) for f in globlib.glob(str(p)))
        self.files = [f for f in names if f.suffix.lower() in (".bin", ".pcd")]
        if not self.files:
            raise SourceError(f"files: no .bin or .pcd files in {path} (set points_path to a folder or glob)")
        self.bin_fields = [f.strip() for f in bin_fields.split(",") if f.strip()]
        if not {"x", "y", "z"} <= set(self.bin_fields):
            raise SourceError(f"bin_fields {bin_fields!r} must name x, y and z (e.g. x,y,z,intensity)")
        self.rate_hz, self.loop, self.frame_id = float(rate_hz), loop, frame_id
        self._playlist = Playlist(len(self.files), rate_hz if real_time else 0.0, loop)

    def load(self, f: Path) -> dict[str, np.ndarray]:
        cols = read_pcd(f) if f.suffix.lower() == ".pcd" else read_bin(f, self.bin_fields)
        return to_scan_fields(cols, str(f))

    def read(self, timeout: float) -> LidarScan | None:
        i = self._playlist.next(timeout)
        if i is None:
            return None
        f = self.files[i]
        return LidarScan(time.time_ns(), self.load(f), self.frame_id, index=i, info={"file": f.name})

    def close(self) -> None:
        pass
