"""Bytes and CPU of image_transport's and point_cloud_transport's compressed formats per stream (issue #12).

    python bench/bench_compression.py [--frames 30]

On 640x480 frames of the built-in scene (depth, aligned depth, colour, IR) and on the real
D435 recording's depth (../shared/data/realsense, when present): raw bytes vs compressed
bytes per frame (and per second at 30 fps), and the CPU time of encoding + decoding one frame
with core/compressed.py (Pillow + numba, what camera_node and the subscribing nodes run).
Goals: compressedDepth >= 3x smaller than raw on the scene and the D435, encode + decode
<= 20 % of a core at 30 fps (<= 6.7 ms per frame).
LiDAR scans as lidar_node packs them (24-byte points) through point_cloud_transport's zstd and
zlib (core/cloud_compression.py) at 10 Hz: the built-in scene at 128x2048, and when
../shared/data is present a real KITTI HDL-64 scan and a real Ouster OS-2-128 scan (needs
ouster-sdk).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def scene_frames(n: int) -> list:
    from depth_ai_nodes.core.registration import align_depth_to_color
    from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

    cam = SyntheticCamera(World.default(seed=0), CameraRig(640, 480), seed=0)
    rig = cam.rig
    out = []
    for k in range(n):
        f = cam.render(2.0 + 0.5 * k, frame_index=k)
        aligned = align_depth_to_color(f.depth_mm, rig.depth_model, rig.color_model, rig.depth_to_color,
                                       depth_scale=0.001)
        out.append({"depth 16UC1": f.depth_mm, "aligned depth 16UC1": aligned, "colour rgb8": f.color,
                    "IR mono8": f.ir})
    return out


def d435_depth() -> np.ndarray | None:
    path = ROOT.parent / "shared" / "data" / "realsense" / "d435_single_depth_color_640x480.bag"
    if not path.is_file():
        return None
    import pyrealsense2 as rs

    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    pipe.start(cfg)
    try:
        for _ in range(20):
            ok, fs = pipe.try_wait_for_frames(2000)
            if ok and fs.get_depth_frame():
                return np.asanyarray(fs.get_depth_frame().get_data()).copy()
    finally:
        pipe.stop()
    return None


def lossless_bound(depth: np.ndarray) -> float:
    """16 bits over the zero-order entropy (bits per pixel) of the residual of JPEG-LS's median
    edge detector, which predicts each pixel from its left, upper and upper-left neighbours:
    about the best size ratio a lossless coder that predicts from neighbours without context
    modelling reaches (PNG's filters and RVL's deltas are weaker predictors)."""
    d = depth.astype(np.int64)
    a, b, c = np.zeros_like(d), np.zeros_like(d), np.zeros_like(d)
    a[:, 1:], b[1:, :], c[1:, 1:] = d[:, :-1], d[:-1, :], d[:-1, :-1]
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    residual = d - np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))
    _, counts = np.unique(residual, return_counts=True)
    p = counts / counts.sum()
    return 16.0 / float(-(p * np.log2(p)).sum())


def bound_rows(name: str, frames: list[np.ndarray]) -> str:
    bounds = [lossless_bound(a) for a in frames]
    return f"| {name} | {np.mean(bounds):.2f}x ({min(bounds):.2f}-{max(bounds):.2f}x) |"


def lidar_scans(count: int) -> dict[str, list[bytes]]:
    """PointCloud2 data of LiDAR scans as lidar_node packs them (x y z intensity t ring, 24 bytes)."""
    from depth_ai_nodes.core import pointcloud
    from depth_ai_nodes.lidar import SourceError, open_source
    from depth_ai_nodes.lidar.base import POINT_FIELDS

    def packed(source, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            scan = source.read(2.0)
            if scan is not None:
                cols = {k: np.asarray(scan.points[k], t) for k, t in POINT_FIELDS}
                out.append(bytes(pointcloud.pack(cols, point_step=24).data))
        source.close()
        return out

    scans = {"scene 128x2048": packed(open_source("synthetic", beams=128, columns=2048, rate_hz=50.0,
                                                  real_time=False), count)}
    data = ROOT.parent / "shared" / "data"
    if (data / "kitti" / "velodyne").is_dir():
        scans["KITTI HDL-64 (unorganized)"] = packed(open_source("kitti", path=str(data / "kitti"), rate_hz=10.0,
                                                                 loop=False, real_time=False), 1)
    pcap = data / "ouster" / "OS-2-128-U1_v2.3.0_1024x10.pcap"
    if pcap.is_file():
        try:
            scans["Ouster OS-2-128 1024x10"] = packed(open_source("ouster", pcap=str(pcap), metadata="",
                                                                  rate_hz=10.0, loop=False, real_time=False),
                                                      min(count, 5))
        except SourceError as err:
            print(f"(Ouster scan skipped: {err})", file=sys.stderr)
    return {k: v for k, v in scans.items() if v}


def measure(name: str, frames: list, codecs: list[tuple[str, object, object]], rate_hz: float = 30.0
            ) -> list[str]:
    rows = []
    raw = frames[0].nbytes if isinstance(frames[0], np.ndarray) else len(frames[0])
    for label, enc, dec in codecs:
        sizes, t_enc, t_dec = [], [], []
        for a in frames:
            t0 = time.perf_counter()
            fmt, data = enc(a)
            t1 = time.perf_counter()
            dec(fmt, data)
            t2 = time.perf_counter()
            sizes.append(len(data))
            t_enc.append(t1 - t0)
            t_dec.append(t2 - t1)
        size = float(np.mean(sizes))
        cpu = 1e3 * (np.median(t_enc) + np.median(t_dec))
        rows.append(f"| {name} | {label} | {raw / 1e3:.0f} | {size / 1e3:.1f} | {raw / size:.2f}x | "
                    f"{rate_hz * raw * 8 / 1e6:.0f} -> {rate_hz * size * 8 / 1e6:.1f} | "
                    f"{1e3 * np.median(t_enc):.2f} | {1e3 * np.median(t_dec):.2f} | {cpu * rate_hz / 10:.0f} % |")
    return rows


def main() -> int:
    from depth_ai_nodes.core import compressed as c

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=30)
    args = p.parse_args()
    frames = scene_frames(args.frames)
    depth_codecs = [(f"compressedDepth {k}", lambda a, k=k: c.encode_compressed_depth(a, "16UC1", k),
                     c.decode_compressed_depth) for k in ("png", "rvl")]
    for a in frames[:2]:  # JIT / caches out of the timing
        for _, e, d in depth_codecs:
            d(*e(a["depth 16UC1"]))
    rows, bounds = [], []
    for key in ("depth 16UC1", "aligned depth 16UC1"):
        rows += measure(f"scene {key}", [f[key] for f in frames], depth_codecs)
        bounds.append(bound_rows(f"scene {key}", [f[key] for f in frames]))
    d435 = d435_depth()
    if d435 is not None:
        rows += measure("D435 recording depth 16UC1", [d435] * 5, depth_codecs)
        bounds.append(bound_rows("D435 recording depth 16UC1", [d435]))
    for key, enc in (("colour rgb8", "rgb8"), ("IR mono8", "mono8")):
        codecs = [(f"compressed {k}", lambda a, k=k, e=enc: c.encode_compressed(a, e, k), c.decode_compressed)
                  for k in ("jpeg", "png")]
        rows += measure(f"scene {key}", [f[key] for f in frames], codecs)
    print(f"640x480, {args.frames} scene frames; CPU = median encode + decode of one frame on one core")
    print("| stream | format | raw kB | compressed kB | ratio | Mbit/s at 30 fps | encode ms | decode ms "
          "| CPU at 30 fps (% of a core) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    from depth_ai_nodes.core import cloud_compression as cc

    # encode -> ((format, raw size), payload), as a message carries the size beside the payload
    cloud_codecs = [(f"{fmt} level {level}", lambda d, f=fmt, lv=level: ((f, len(d)), cc.encode(d, f, lv)),
                     lambda key, payload: cc.decode(key[0], payload, key[1]))
                    for fmt, level in (("zstd", 1), ("zstd", 3), ("zstd", -1), ("zlib", 1), ("zlib", 6))]
    # lidar_node's compressed_points.resolution 0.001: x y z rounded (lossy) before zstd level 1
    cloud_codecs.append(("zstd level 1, x y z to 1 mm",
                         lambda d: (("zstd", len(d)), cc.encode(cc.round_coordinates(d, 24, (0, 4, 8), 0.001),
                                                                "zstd", 1)),
                         lambda key, payload: cc.decode(key[0], payload, key[1])))
    cloud_rows = []
    for name, scans in lidar_scans(max(3, args.frames // 5)).items():
        cloud_rows += measure(name, scans, cloud_codecs, rate_hz=10.0)
    print("\nLiDAR scans (24-byte points as lidar_node publishes them) at 10 Hz; CPU = median encode + "
          "decode of one scan on one core")
    print("| scan | format | raw kB | compressed kB | ratio | Mbit/s at 10 Hz | encode ms | decode ms "
          "| CPU at 10 Hz (% of a core) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(cloud_rows))
    print("\nlossless bound: 16 bits / zero-order entropy of the JPEG-LS (median edge detector) residual, "
          "mean (range) over the frames")
    print("| stream | bound |")
    print("|---|---|")
    print("\n".join(bounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
