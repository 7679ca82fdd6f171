"""Write RealSense recordings without a camera: a pyrealsense2 software_device
(depth Z16 + infrared Y8 on a "Stereo Module", color RGB8 on an "RGB Camera")
fed with numpy frames and recorded by librealsense's own `rs.recorder`.

The result is a .db3 that `source:=file` (and the RealSense Viewer) play as a
camera. Tests use it to check playback pixel for pixel; benchmarks use it for
a source that costs almost nothing; users can turn the synthetic scene into a
recording.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.transforms import RigidTransform


@dataclass
class Recording:
    """What to record: the camera's calibration (core CameraModel / RigidTransform,
    depth optical -> other optical) and identity."""

    depth: CameraModel
    color: CameraModel
    ir: CameraModel | None = None
    depth_to_color: RigidTransform = field(default_factory=RigidTransform.identity)
    depth_to_ir: RigidTransform = field(default_factory=RigidTransform.identity)
    fps: int = 30
    depth_units: float = 0.001
    baseline_mm: float = 50.0
    name: str = "depth_ai_nodes software camera"
    serial: str = "000000000000"
    firmware: str = "5.16.0.1"


def _rs_extrinsics(rs, transform: RigidTransform):
    ext = rs.extrinsics()
    ext.rotation, ext.translation = transform.to_rs_extrinsics()
    return ext


def record(path: str | Path, spec: Recording,
           frames: Iterable[tuple[np.ndarray, np.ndarray | None, np.ndarray]]) -> int:
    """Record (depth uint16, ir uint8 or None, color rgb8) framesets to `path` (.db3).

    Returns the number of framesets written."""
    import pyrealsense2 as rs

    dev = rs.software_device()
    stereo, rgb = dev.add_sensor("Stereo Module"), dev.add_sensor("RGB Camera")

    def video(kind, index, uid, bpp, fmt, model: CameraModel):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = kind, index, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = model.width, model.height, spec.fps, bpp, fmt
        vs.intrinsics = model.to_rs_intrinsics()
        return vs

    depth_p = stereo.add_video_stream(video(rs.stream.depth, 0, 0, 2, rs.format.z16, spec.depth),
                                      True)
    ir_p = None
    if spec.ir is not None:
        ir_p = stereo.add_video_stream(video(rs.stream.infrared, 1, 1, 1, rs.format.y8, spec.ir))
    color_p = rgb.add_video_stream(video(rs.stream.color, 0, 2, 3, rs.format.rgb8, spec.color))
    stereo.add_read_only_option(rs.option.depth_units, float(spec.depth_units))
    stereo.add_read_only_option(rs.option.stereo_baseline, float(spec.baseline_mm))
    depth_p.register_extrinsics_to(color_p, _rs_extrinsics(rs, spec.depth_to_color))
    if ir_p is not None:
        depth_p.register_extrinsics_to(ir_p, _rs_extrinsics(rs, spec.depth_to_ir))
    dev.register_info(rs.camera_info.name, spec.name)
    dev.register_info(rs.camera_info.serial_number, spec.serial)
    dev.register_info(rs.camera_info.firmware_version, spec.firmware)

    path = Path(path)
    if path.exists():
        path.unlink()
    recorder = rs.recorder(str(path), dev)
    sink = rs.frame_queue(64)
    stereo.open([p for p in (depth_p, ir_p) if p is not None])
    rgb.open(color_p)
    stereo.start(sink)
    rgb.start(sink)
    n = 0
    next_due = time.monotonic()
    try:
        for n, (depth, ir, color) in enumerate(frames, start=1):
            ts = n * 1000.0 / spec.fps
            for sensor, profile, data, bpp in ((stereo, depth_p, depth, 2),
                                               (stereo, ir_p, ir, 1), (rgb, color_p, color, 3)):
                if profile is None or data is None:
                    continue
                data = np.ascontiguousarray(data)
                frame = rs.software_video_frame()
                frame.pixels, frame.bpp, frame.stride = data, bpp, data.shape[1] * bpp
                frame.timestamp, frame.frame_number = ts, n
                frame.domain = rs.timestamp_domain.hardware_clock
                frame.profile = profile.as_video_stream_profile()
                sensor.on_video_frame(frame)
            while sink.poll_for_frame():
                pass
            # the recording's timeline is arrival time: pace it like a camera would
            next_due += 1.0 / spec.fps
            time.sleep(max(0.0, next_due - time.monotonic()))
    finally:
        stereo.stop()
        rgb.stop()
        stereo.close()
        rgb.close()
        del recorder  # flushes and closes the file
    return n


def record_scene(path: str | Path, frames: int = 60, width: int = 640, height: int = 480,
                 fps: int = 30, seed: int = 0) -> int:
    """Record `frames` framesets of the built-in scene as a RealSense .db3."""
    from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

    rig = CameraRig(width=width, height=height, fps=float(fps))
    cam = SyntheticCamera(World.default(seed=seed), rig, seed=seed)
    spec = Recording(depth=rig.depth_model, color=rig.color_model, ir=rig.ir_model,
                     depth_to_color=rig.depth_to_color, depth_to_ir=rig.depth_to_ir, fps=fps,
                     depth_units=rig.depth_scale, baseline_mm=rig.baseline_m * 1000.0,
                     serial=f"scene-{seed}")

    def gen():
        for k in range(frames):
            f = cam.render(k / fps, frame_index=k)
            yield f.depth_mm, f.ir, f.color

    return record(path, spec, gen())
