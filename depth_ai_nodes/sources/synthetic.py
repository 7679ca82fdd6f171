"""The built-in scene (depth_ai_nodes/core/scene) as a camera, paced at its fps.

Each frame is rendered at the scene time of its stamp (core.scene.scene_time),
the convention lidar_node and the tests share, so every process that renders
the world sees the robot at the same instant for the same stamp; the sensor
noise is seeded by seed and frame number. The source keeps wall-clock pace and skips frames (counted in
`skipped`) rather than falling behind when rendering is slower than real time.
With `prerender` > 0 the first N frames are rendered once at start and then
replayed in a loop (fresh stamps): a camera that costs almost no CPU, for
slow machines and for measuring the node itself. Depth goes through numpy versions of librealsense's decimation and threshold
filters (filters.py); spatial/temporal/hole filling exist only for
pyrealsense2 sources.
"""
from __future__ import annotations

import dataclasses
import time

from depth_ai_nodes.sources.base import (STARTING, STOPPED, STREAMING, Frameset, SourceError)
from depth_ai_nodes.sources.filters import decimate_depth, threshold_depth
from depth_ai_nodes.sources.realsense import StreamSettings



class SyntheticSource:
    """SyntheticCamera of World.default(seed) at the depth profile's size and fps."""

    def __init__(self, streams: StreamSettings | None = None, seed: int = 0,
                 emitter: bool = True, real_time: bool = True, prerender: int = 0,
                 start_ns: int | None = None) -> None:
        from depth_ai_nodes.core.scene import (CameraRig, DepthSensorModel, SyntheticCamera, World,
                                               scene_time)

        self._scene_time = scene_time

        self.streams = streams or StreamSettings()
        w, h, fps = self.streams.depth_profile
        cw, ch, cfps = self.streams.color_profile
        iw, ih, ifps = self.streams.infra_profile
        w, h, fps = w or 640, h or 480, fps or 30
        if (iw or w, ih or h) != (w, h):
            raise SourceError(f"synthetic: depth_module.infra_profile ({iw}x{ih}) must have the "
                              f"depth profile's size ({w}x{h}): IR and depth share one imager")
        for name, rate in (("rgb_camera.color_profile", cfps), ("depth_module.infra_profile",
                                                                ifps)):
            if rate and rate != fps:
                raise SourceError(f"synthetic: {name} fps {rate} must equal the depth fps {fps} "
                                  f"(all streams of a frameset share one stamp)")
        if not 1 <= fps <= 120 or w < 16 or h < 16:
            raise SourceError(f"synthetic: profile {w},{h},{fps} is out of range "
                              f"(16 px or more, 1-120 fps)")
        for name, on in (("spatial_filter", self.streams.filters.spatial),
                         ("temporal_filter", self.streams.filters.temporal),
                         ("hole_filling_filter", self.streams.filters.hole_filling)):
            if on:
                raise SourceError(f"{name}.enable needs source:=realsense or source:=file "
                                  f"(librealsense's filter); the synthetic source has decimation "
                                  f"and threshold only")
        self.fps = float(fps)
        self.seed = int(seed)
        self.real_time = real_time
        # Not real time: a simulated clock from start_ns (wall clock at start() when None),
        # so a fixed start_ns and seed give the same frames on every run.
        self.start_ns = start_ns
        rig = CameraRig(width=w, height=h, fps=self.fps, color_width=cw or w,
                        color_height=ch or h)
        self.camera = SyntheticCamera(World.default(seed=self.seed), rig, seed=self.seed,
                                      sensor=DepthSensorModel(emitter_on=bool(emitter)))
        self.rig = rig
        self.filters = self.streams.filters
        self.depth_model = rig.depth_model
        if self.filters.decimation and self.filters.decimation_magnitude > 1:
            m = int(self.filters.decimation_magnitude)
            self.depth_model = rig.depth_model.decimated(m)  # librealsense's rule
        self.state = STARTING
        self.info = {"name": "depth_ai_nodes synthetic D435", "serial": f"synthetic-{self.seed}",
                     "firmware": "scene", "fps": f"{self.fps:g}"}
        self.skipped = 0
        self.prerender = max(0, int(prerender))
        self._cache: list[Frameset] = []
        self._k = 0
        self._t0 = 0.0

    def available_streams(self) -> set[str]:
        return {"color", "infra1", "depth", "ground_truth"}

    def start(self) -> None:
        self._t0_wall_ns = time.time_ns()
        if self.prerender and not self._cache:
            base = self.start_ns or self._t0_wall_ns
            self._cache = [self._render(k, base + round(k * 1e9 / self.fps))
                           for k in range(self.prerender)]
        self._t0 = time.monotonic()
        self._k = 0
        self.state = STREAMING

    def read(self, timeout: float) -> Frameset | None:
        if self.state != STREAMING:
            time.sleep(min(timeout, 0.05))
            return None
        if self.real_time:
            due = self._t0 + self._k / self.fps
            now = time.monotonic()
            if due - now > timeout:
                time.sleep(timeout)
                return None
            if due > now:
                time.sleep(due - now)
            else:
                behind = int((now - due) * self.fps)
                if behind > 0:  # rendering fell behind: skip to the current frame
                    self.skipped += behind
                    self._k += behind
        k = self._k
        self._k += 1
        if self.real_time:
            stamp_ns = time.time_ns()
        else:
            stamp_ns = (self.start_ns or self._t0_wall_ns) + round(k * 1e9 / self.fps)
        if self._cache:
            fs = self._cache[k % len(self._cache)]
            return dataclasses.replace(fs, stamp_ns=stamp_ns, frame_number=k)
        return self._render(k, stamp_ns)

    def _render(self, k: int, stamp_ns: int) -> Frameset:
        frame = self.camera.render(self._scene_time(stamp_ns), frame_index=k)
        depth = frame.depth_mm
        f = self.filters
        if f.decimation and f.decimation_magnitude > 1:
            depth = decimate_depth(depth, int(f.decimation_magnitude))
        if f.threshold:
            depth = threshold_depth(depth, self.rig.depth_scale, f.threshold_min_m,
                                    f.threshold_max_m)
        return Frameset(stamp_ns=stamp_ns, depth=depth, color=frame.color, ir=frame.ir,
                        gt_depth_m=frame.gt_depth_m, depth_model=self.depth_model,
                        gt_model=self.rig.depth_model,
                        color_model=self.rig.color_model, ir_model=self.rig.ir_model,
                        depth_to_color=self.rig.depth_to_color, depth_to_ir=self.rig.depth_to_ir,
                        depth_scale=self.rig.depth_scale, frame_number=k, info=self.info)

    def stop(self) -> None:
        self.state = STOPPED
