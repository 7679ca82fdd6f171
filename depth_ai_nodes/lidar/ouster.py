"""An Ouster capture (pcap + metadata JSON) through ouster-sdk, with its NEAR_IR image.

ouster-sdk is optional (`pip install ouster-sdk`); it is imported only here. Points come
from ouster-sdk's own XYZLut (metres, sensor frame, no extrinsics), intensity = SIGNAL,
ring = beam row, t = each column's measurement time since the scan's first valid column;
zero-range returns are dropped. NEAR_IR is destaggered into a (rings, columns) uint16 image.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .base import LidarScan, Playlist, SourceError


def _sdk():
    try:
        import ouster.sdk.core as core
        from ouster.sdk import open_source
    except ImportError as err:
        raise SourceError(f"source 'ouster' needs ouster-sdk (pip install ouster-sdk): {err}") from err
    return core, open_source


def read_ouster(pcap: str | Path, metadata: str | Path | None = None) -> list[dict]:
    """Every complete scan of a capture: {'points': {...}, 'near_ir': img, 'range_mm': staggered,
    'timestamp': ns per column, 'info': sensor_info} (for the node and the tests)."""
    core, open_src = _sdk()
    pcap = Path(pcap)
    meta = Path(metadata) if metadata else pcap.with_suffix(".json")
    if not pcap.is_file() or not meta.is_file():
        raise SourceError(f"ouster: need the capture {pcap} and its metadata {meta}")
    src = open_src(str(pcap), meta=[str(meta)])
    info = src.sensor_info[0]
    lut = core.XYZLut(info, use_extrinsics=False)
    out = []
    try:
        for frames in src:
            scan = frames if hasattr(frames, "has_field") and hasattr(frames, "timestamp") else frames[0]
            if scan is None:
                continue
            rng = scan.field(core.ChanField.RANGE)
            xyz = lut(scan)
            ok = rng > 0
            h, w = rng.shape
            ts = scan.timestamp.astype(np.int64)
            valid_ts = ts[ts > 0]
            t0 = int(valid_ts.min()) if valid_ts.size else 0
            tcol = np.where(ts > 0, (ts - t0) * 1e-9, np.nan).astype(np.float32)
            sig = scan.field(core.ChanField.SIGNAL) if scan.has_field(core.ChanField.SIGNAL) else rng * 0
            pts = {"x": xyz[..., 0][ok].astype(np.float32), "y": xyz[..., 1][ok].astype(np.float32),
                   "z": xyz[..., 2][ok].astype(np.float32),
                   "intensity": sig[ok].astype(np.float32),
                   "ring": np.broadcast_to(np.arange(h, dtype=np.uint16)[:, None], (h, w))[ok].copy(),
                   "t": np.broadcast_to(tcol[None, :], (h, w))[ok].copy()}
            nir = core.destagger(info, scan.field(core.ChanField.NEAR_IR)).astype(np.uint16)
            out.append({"points": pts, "near_ir": nir, "range_mm": rng.copy(), "timestamp": ts,
                        "t0_ns": t0, "info": info})
    finally:
        src.close()
    if not out:
        raise SourceError(f"ouster: {pcap} holds no complete scan for {meta}")
    return out


class OusterSource:
    def __init__(self, pcap: str, metadata: str = "", rate_hz: float = 0.0, loop: bool = True,
                 frame_id: str = "os_sensor", real_time: bool = True) -> None:
        self.scans = read_ouster(pcap, metadata or None)
        info = self.scans[0]["info"]
        fps = float(getattr(info.format, "fps", 10) or 10)
        self.rate_hz = float(rate_hz) if rate_hz > 0 else fps
        self.loop, self.frame_id = loop, frame_id
        self.rings, self.columns = self.scans[0]["near_ir"].shape
        self._playlist = Playlist(len(self.scans), self.rate_hz if real_time else 0.0, loop)

    def read(self, timeout: float) -> LidarScan | None:
        i = self._playlist.next(timeout)
        if i is None:
            return None
        s = self.scans[i]
        return LidarScan(time.time_ns(), s["points"], self.frame_id, near_ir=s["near_ir"],
                         index=i)

    def close(self) -> None:
        pass
