"""librealsense's own rs.align on frames we choose: a pyrealsense2 software_device camera.

Used by test_registration.py (parity) and bench/bench_registration.py (timing), so both compare
against the real library on the SAME frames. Depth Z16 on a "Stereo Module" sensor, colour RGB8
on an "RGB Camera" sensor, extrinsics registered (rotation column-major), frames injected with
on_video_frame and paired by rs.syncer, aligned by rs.align(rs.stream.color).
"""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.transforms import RigidTransform


def rs_intrinsics(model: CameraModel, rs_model: str = "brown_conrady") -> rs.intrinsics:
    intr = rs.intrinsics()
    intr.width, intr.height = model.width, model.height
    intr.fx, intr.fy, intr.ppx, intr.ppy = model.fx, model.fy, model.cx, model.cy
    intr.model = getattr(rs.distortion, model.rs_model or rs_model)
    intr.coeffs = [float(c) for c in model.coeffs(5)]
    return intr


class RsAligner:
    """A software camera with the given calibration; ``align(depth)`` runs librealsense's rs.align."""

    def __init__(self, depth_model: CameraModel, color_model: CameraModel, depth_to_color: RigidTransform,
                 depth_units: float = 0.001, fps: int = 30) -> None:
        self.depth_model, self.color_model = depth_model, color_model
        self.dev = rs.software_device()
        self.stereo = self.dev.add_sensor("Stereo Module")
        self.rgb = self.dev.add_sensor("RGB Camera")

        def stream(kind, index, uid, bpp, fmt, model):
            vs = rs.video_stream()
            vs.type, vs.index, vs.uid = kind, index, uid
            vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = model.width, model.height, fps, bpp, fmt
            vs.intrinsics = rs_intrinsics(model)
            return vs

        self.depth_p = self.stereo.add_video_stream(stream(rs.stream.depth, 0, 0, 2, rs.format.z16, depth_model), True)
        self.color_p = self.rgb.add_video_stream(stream(rs.stream.color, 0, 1, 3, rs.format.rgb8, color_model))
        self.stereo.add_read_only_option(rs.option.depth_units, float(depth_units))
        self.stereo.add_read_only_option(rs.option.stereo_baseline, 50.0)
        rot, trans = depth_to_color.to_rs_extrinsics()
        ext = rs.extrinsics()
        ext.rotation, ext.translation = rot, trans
        self.depth_p.register_extrinsics_to(self.color_p, ext)
        self.syncer = rs.syncer()
        self.stereo.open(self.depth_p)
        self.rgb.open(self.color_p)
        self.stereo.start(self.syncer)
        self.rgb.start(self.syncer)
        self.align_block = rs.align(rs.stream.color)
        self.color = np.zeros((color_model.height, color_model.width, 3), np.uint8)
        self.n = 0

    def frameset(self, depth: np.ndarray) -> rs.composite_frame:
        """Inject one depth + colour pair; the synchronized frameset (bit-identical depth).

        The syncer drops a stream's very first frame, so a pair is re-injected (new frame
        number) until a frameset holding exactly this depth frame comes out.
        """
        self._keep = depth = np.ascontiguousarray(depth, np.uint16)
        for _ in range(5):
            self.n += 1
            for sensor, profile, data, bpp in ((self.stereo, self.depth_p, depth, 2),
                                               (self.rgb, self.color_p, self.color, 3)):
                f = rs.software_video_frame()
                f.pixels, f.bpp, f.stride = data, bpp, data.shape[1] * bpp
                f.timestamp, f.frame_number = self.n * 1000.0 / 30, self.n
                f.domain = rs.timestamp_domain.hardware_clock
                f.profile = profile.as_video_stream_profile()
                sensor.on_video_frame(f)
            while True:
                ok, fs = self.syncer.try_wait_for_frames(1000)
                if not ok:
                    break
                d = fs.get_depth_frame()
                if d and fs.get_color_frame() and d.get_frame_number() == self.n:
                    return fs
        raise RuntimeError("software device did not deliver a depth+color frameset")

    def align_frameset(self, fs: rs.composite_frame) -> np.ndarray:
        out = self.align_block.process(fs)
        return np.asanyarray(out.get_depth_frame().get_data())

    def align(self, depth: np.ndarray) -> np.ndarray:
        return self.align_frameset(self.frameset(depth)).copy()

    def close(self) -> None:
        for s in (self.stereo, self.rgb):
            try:
                s.stop()
                s.close()
            except RuntimeError:
                pass


def scene_depth(model: CameraModel, seed: int = 0, z_unit: float = 0.001) -> np.ndarray:
    """Realistic raw depth: a slanted floor, a back wall, boxes in front (steps), holes and edge dropouts."""
    rng = np.random.default_rng(seed)
    h, w = model.height, model.width
    rays = model.ray_grid()
    x, y = rays[..., 0].astype(np.float64), rays[..., 1].astype(np.float64)
    z = np.full((h, w), 4.5)                              # back wall
    floor = np.where(y > 0.02, 1.2 / np.maximum(y, 1e-6), np.inf)  # floor 1.2 m below the camera
    z = np.minimum(z, floor)
    for _ in range(6):                                    # boxes (fronto-parallel and slanted)
        cx, cy = rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.3)
        hw, hh = rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.2)
        z0, slope = rng.uniform(0.4, 3.5), rng.uniform(-1.0, 1.0)
        inside = (np.abs(x - cx) < hw) & (np.abs(y - cy) < hh)
        zb = z0 + slope * (x - cx)
        z = np.where(inside & (zb < z) & (zb > 0.2), zb, z)
    z += rng.normal(0, 0.002, z.shape) * z * z             # stereo-like noise
    raw = np.rint(z / z_unit)
    holes = rng.random((h, w)) < 0.03                      # speckle holes
    blobs = np.zeros((h, w), bool)
    for _ in range(8):                                     # larger dark/shiny holes
        u0, v0 = rng.integers(0, w), rng.integers(0, h)
        r = rng.integers(3, max(4, w // 30))
        blobs[max(0, v0 - r):v0 + r, max(0, u0 - r):u0 + r] = True
    edges = np.zeros((h, w), bool)                         # dropouts at depth discontinuities
    edges[:, 1:] |= np.abs(np.diff(z, axis=1)) > 0.1
    raw[holes | blobs | edges | (raw > 65535)] = 0
    return raw.astype(np.uint16)
