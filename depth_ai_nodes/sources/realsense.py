"""Live RealSense cameras through pyrealsense2, and the pipeline code that
file playback shares (playback.py).

One conversion from a pyrealsense2 frameset to a Frameset serves live and
playback: the librealsense filter chain (realsense-ros order: decimation,
threshold, spatial, temporal, hole filling) runs on depth, and depth
intrinsics are read from the *filtered* frame so camera_info always matches
the image (decimation changes both). Intrinsics and extrinsics are cached per
stream profile, as they only change when the profile does.

A live camera that disappears (unplug, USB reset) is detected by the context's
devices-changed callback or by read timeouts with the serial gone from the
device list; the source then reports RECONNECTING and retries with exponential
backoff from inside `read`, so the node never restarts.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from depth_ai_nodes.sources.base import (RECONNECTING, STARTING, STOPPED, STREAMING,
                                         Backoff, Frameset, SourceError)

log = logging.getLogger(__name__)


def _rs():
    """pyrealsense2, imported on first use with a clear error if missing."""
    try:
        import pyrealsense2 as rs
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise SourceError(f"pyrealsense2 is not importable ({err}); install it with "
                          f"'pip install pyrealsense2' and Debian's libusb-1.0-0") from err
    return rs


# --- pyrealsense2 -> core types -------------------------------------------------------

def camera_model_from_rs(intr: Any) -> Any:
    """rs.intrinsics -> core CameraModel (keeps librealsense's distortion name for registration)."""
    from depth_ai_nodes.core.camera_model import CameraModel

    return CameraModel.from_rs_intrinsics(intr)


def transform_from_rs(ext: Any) -> Any:
    """rs.extrinsics (rotation column-major) -> core RigidTransform."""
    from depth_ai_nodes.core.transforms import RigidTransform

    return RigidTransform.from_rs_extrinsics(ext)


# --- settings ---------------------------------------------------------------------------

@dataclass
class FilterSettings:
    """The librealsense post-processing chain, realsense-ros parameter semantics."""

    decimation: bool = False
    decimation_magnitude: int = 2
    threshold: bool = False
    threshold_min_m: float = 0.1
    threshold_max_m: float = 4.0
    spatial: bool = False
    temporal: bool = False
    hole_filling: bool = False


@dataclass
class StreamSettings:
    """Which streams, at which profile ((w, h, fps), 0 = any) and what to do with the device."""

    enable_color: bool = True
    enable_depth: bool = True
    enable_infra1: bool = True
    color_profile: tuple[int, int, int] = (640, 480, 30)
    depth_profile: tuple[int, int, int] = (640, 480, 30)
    infra_profile: tuple[int, int, int] = (640, 480, 30)
    filters: FilterSettings = field(default_factory=FilterSettings)


def build_filters(settings: FilterSettings) -> list[Any]:
    """The enabled librealsense filters, in realsense-ros order."""
    rs = _rs()
    chain: list[Any] = []
    if settings.decimation:
        dec = rs.decimation_filter()
        dec.set_option(rs.option.filter_magnitude, float(settings.decimation_magnitude))
        chain.append(dec)
    if settings.threshold:
        thr = rs.threshold_filter()
        thr.set_option(rs.option.min_distance, float(settings.threshold_min_m))
        thr.set_option(rs.option.max_distance, float(settings.threshold_max_m))
        chain.append(thr)
    if settings.spatial:
        chain.append(rs.spatial_filter())
    if settings.temporal:
        chain.append(rs.temporal_filter())
    if settings.hole_filling:
        chain.append(rs.hole_filling_filter())
    return chain


class FramesetConverter:
    """pyrealsense2 frameset -> Frameset, shared by live cameras and playback.

    Copies pixel data out of librealsense's frame pool (holding frames would
    starve it) and caches models/transforms per stream profile."""

    def __init__(self, filters: list[Any], depth_scale: float, info: dict[str, str],
                 stamp: Callable[[Any], int]) -> None:
        self.filters = filters
        self.depth_scale = depth_scale
        self.info = info
        self._stamp = stamp
        self._models: dict[tuple, Any] = {}
        self._transforms: dict[tuple, Any] = {}

    @staticmethod
    def _key(profile: Any) -> tuple:
        vp = profile.as_video_stream_profile()
        return (profile.unique_id(), vp.width(), vp.height())

    def _model(self, frame: Any) -> Any:
        key = self._key(frame.profile)
        if key not in self._models:
            intr = frame.profile.as_video_stream_profile().get_intrinsics()
            self._models[key] = camera_model_from_rs(intr)
        return self._models[key]

    def _transform(self, src: Any, dst: Any) -> Any:
        key = (src.profile.unique_id(), dst.profile.unique_id())
        if key not in self._transforms:
            self._transforms[key] = transform_from_rs(src.profile.get_extrinsics_to(dst.profile))
        return self._transforms[key]

    def convert(self, frames: Any) -> Frameset | None:
        rs = _rs()
        depth = color = ir = None
        for frame in frames:
            stream = frame.profile.stream_type()
            if stream == rs.stream.depth:
                depth = frame
            elif stream == rs.stream.color:
                color = frame
            elif stream == rs.stream.infrared and frame.profile.stream_index() in (0, 1) \
                    and ir is None:
                ir = frame
        if depth is None and color is None and ir is None:
            return None
        unfiltered_depth = depth
        if depth is not None:
            for flt in self.filters:
                depth = flt.process(depth)
        first = depth if depth is not None else (color if color is not None else ir)
        fs = Frameset(stamp_ns=self._stamp(first), depth=None, depth_scale=self.depth_scale,
                      frame_number=int(first.get_frame_number()), info=self.info)
        if depth is not None:
            fs.depth = np.array(depth.get_data(), dtype=np.uint16, copy=True)
            fs.depth_model = self._model(depth)
        if color is not None:
            fs.color = _rgb_copy(color)
            fs.color_model = self._model(color)
            if unfiltered_depth is not None:
                fs.depth_to_color = self._transform(unfiltered_depth, color)
        if ir is not None:
            fs.ir = np.array(ir.get_data(), dtype=np.uint8, copy=True)
            fs.ir_model = self._model(ir)
            if unfiltered_depth is not None:
                fs.depth_to_ir = self._transform(unfiltered_depth, ir)
        return fs


def _rgb_copy(frame: Any) -> np.ndarray:
    rs = _rs()
    arr = np.asanyarray(frame.get_data())
    fmt = frame.profile.format()
    if fmt == rs.format.bgr8:
        return np.ascontiguousarray(arr[..., ::-1])
    if fmt in (rs.format.rgba8, rs.format.bgra8):
        arr = arr[..., :3] if fmt == rs.format.rgba8 else arr[..., 2::-1]
        return np.ascontiguousarray(arr)
    return np.array(arr, dtype=np.uint8, copy=True)


def device_info(device: Any) -> dict[str, str]:
    """name, serial, firmware (and usb type where known) of a pyrealsense2 device."""
    rs = _rs()
    info = {}
    for key, field_ in (("name", rs.camera_info.name), ("serial", rs.camera_info.serial_number),
                        ("firmware", rs.camera_info.firmware_version),
                        ("usb", rs.camera_info.usb_type_descriptor)):
        try:
            if device.supports(field_):
                info[key] = device.get_info(field_)
        except RuntimeError:
            pass
    return info


def depth_scale_of(device: Any) -> float:
    for sensor in device.query_sensors():
        if sensor.is_depth_sensor():
            return float(sensor.as_depth_sensor().get_depth_scale())
    raise SourceError("the device has no depth sensor: camera_node needs a depth stream")


# --- the pipeline source shared with playback -------------------------------------------

class PipelineSource:
    """A pyrealsense2 pipeline as a FrameSource; subclasses say what to open."""

    def __init__(self, streams: StreamSettings) -> None:
        self.streams = streams
        self.state = STARTING
        self.info: dict[str, str] = {}
        self.depth_scale = 0.001
        self.fps = 0.0  # the depth stream's, once started
        self._pipeline: Any = None
        self._profile: Any = None
        self._converter: FramesetConverter | None = None

    # subclasses
    def _config(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _after_start(self, profile: Any) -> None:
        """Device options after the pipeline started (emitter, playback speed...)."""

    def _stamp(self, frame: Any) -> int:
        return time.time_ns()

    def _open(self) -> None:
        rs = _rs()
        cfg = self._config()
        pipeline = rs.pipeline()
        self._before_start(cfg, pipeline)
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as err:
            raise SourceError(self._start_error(err)) from err
        try:
            device = profile.get_device()
            self.info = device_info(device)
            self.depth_scale = depth_scale_of(device)
            self._after_start(profile)
        except Exception:
            pipeline.stop()
            raise
        self._pipeline, self._profile = pipeline, profile
        rates = [sp.fps() for sp in profile.get_streams() if sp.stream_type() == rs.stream.depth]
        self.fps = float(rates[0]) if rates else 0.0
        self._converter = FramesetConverter(build_filters(self.streams.filters),
                                            self.depth_scale, dict(self.info), self._stamp)

    def _before_start(self, cfg: Any, pipeline: Any) -> None:
        """Refuse a configuration before anything streams (nothing to check by default)."""

    def _start_error(self, err: Exception) -> str:
        return f"cannot start the RealSense pipeline: {err}"

    def _close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
        self._pipeline = self._profile = None

    def available_streams(self) -> set[str]:
        """'color' / 'depth' / 'infra1' streams the open pipeline delivers."""
        rs = _rs()
        names = {rs.stream.color: "color", rs.stream.depth: "depth",
                 rs.stream.infrared: "infra1"}
        if self._profile is None:
            return set()
        return {names[s.stream_type()] for s in self._profile.get_streams()
                if s.stream_type() in names}

    def start(self) -> None:
        self._open()
        self.state = STREAMING

    def _grab(self, timeout: float) -> Frameset | None:
        ok, frames = self._pipeline.try_wait_for_frames(max(1, int(timeout * 1000)))
        if not ok:
            return None
        return self._converter.convert(frames)

    def read(self, timeout: float) -> Frameset | None:
        if self.state != STREAMING or self._pipeline is None:
            time.sleep(min(timeout, 0.05))
            return None
        return self._grab(timeout)

    def stop(self) -> None:
        self._close()
        self.state = STOPPED


# --- live cameras -----------------------------------------------------------------------

def _describe_profiles(device: Any, stream: Any) -> str:
    seen = set()
    for sensor in device.query_sensors():
        for sp in sensor.get_stream_profiles():
            if sp.stream_type() != stream or not sp.is_video_stream_profile():
                continue
            vp = sp.as_video_stream_profile()
            seen.add((vp.width(), vp.height(), sp.fps(), str(sp.format()).split(".")[-1]))
    if not seen:
        return "none"
    return ", ".join(f"{w},{h},{fps} ({fmt})" for w, h, fps, fmt in sorted(seen))


class RealSenseSource(PipelineSource):
    """A live camera, picked by serial (or the first one found)."""

    def __init__(self, streams: StreamSettings, serial: str = "", emitter_enabled: int = -1,
                 depth_units: float = 0.0, initial_reset: bool = False,
                 reconnect_timeout_s: float = 6.0, backoff: Backoff | None = None) -> None:
        super().__init__(streams)
        self.serial = str(serial).strip()
        self.emitter_enabled = int(emitter_enabled)
        self.depth_units = float(depth_units)
        self.initial_reset = initial_reset
        self.reconnect_timeout_s = reconnect_timeout_s
        self.backoff = backoff or Backoff()
        self.last_error = ""
        self._lost = threading.Event()
        self._last_frame = time.monotonic()
        self._ctx: Any = None

    def _device(self) -> Any:
        rs = _rs()
        devices = list(rs.context().query_devices())
        if not devices:
            raise SourceError("no RealSense device connected: plug a camera in, or use "
                              "source:=file (a .bag/.db3 recording) or source:=synthetic")
        if not self.serial:
            return devices[0]
        for dev in devices:
            if dev.get_info(rs.camera_info.serial_number) == self.serial:
                return dev
        found = ", ".join(d.get_info(rs.camera_info.serial_number) for d in devices)
        raise SourceError(f"no RealSense device with serial_no {self.serial!r}; connected: "
                          f"{found} (leave serial_no empty for the first one)")

    def _config(self) -> Any:
        rs = _rs()
        device = self._device()
        serial = device.get_info(rs.camera_info.serial_number)
        if self.initial_reset and self.state == STARTING:
            device.hardware_reset()
            self.initial_reset = False
            deadline = time.monotonic() + 15.0  # the camera re-enumerates on USB
            time.sleep(2.0)
            while True:
                try:
                    device = self._device()
                    break
                except SourceError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        cfg = rs.config()
        cfg.enable_device(serial)
        s = self.streams
        wanted = []
        if s.enable_depth:
            wanted.append((rs.stream.depth, -1, s.depth_profile, rs.format.z16, "depth_module.depth_profile"))
        if s.enable_infra1:
            wanted.append((rs.stream.infrared, 1, s.infra_profile, rs.format.y8, "depth_module.infra_profile"))
        if s.enable_color:
            wanted.append((rs.stream.color, -1, s.color_profile, rs.format.rgb8, "rgb_camera.color_profile"))
        for stream, index, (w, h, fps), fmt, pname in wanted:
            probe = rs.config()
            probe.enable_device(serial)
            if index >= 0:
                probe.enable_stream(stream, index, w, h, fmt, fps)
            else:
                probe.enable_stream(stream, w, h, fmt, fps)
            if not probe.can_resolve(rs.pipeline_wrapper(rs.pipeline())):
                raise SourceError(
                    f"{pname}={w},{h},{fps} ({str(fmt).split('.')[-1]}) is not supported by "
                    f"{device.get_info(rs.camera_info.name)}; supported: "
                    f"{_describe_profiles(device, stream)}")
            if index >= 0:
                cfg.enable_stream(stream, index, w, h, fmt, fps)
            else:
                cfg.enable_stream(stream, w, h, fmt, fps)
        return cfg

    def _after_start(self, profile: Any) -> None:
        rs = _rs()
        device = profile.get_device()
        for sensor in device.query_sensors():
            if not sensor.is_depth_sensor():
                continue
            if self.emitter_enabled >= 0 and sensor.supports(rs.option.emitter_enabled):
                sensor.set_option(rs.option.emitter_enabled, float(self.emitter_enabled))
            if self.depth_units > 0 and sensor.supports(rs.option.depth_units):
                sensor.set_option(rs.option.depth_units, self.depth_units)
                self.depth_scale = float(sensor.as_depth_sensor().get_depth_scale())
        if self._ctx is None:
            self._ctx = rs.context()
            self._ctx.set_devices_changed_callback(self._on_devices_changed)

    def _on_devices_changed(self, event: Any) -> None:
        """librealsense's hot-plug callback (its own thread): flag our device's removal."""
        device = self._profile.get_device() if self._profile is not None else None
        try:
            if device is not None and event.was_removed(device):
                self._lost.set()
        except RuntimeError:
            self._lost.set()

    def _stamp(self, frame: Any) -> int:
        rs = _rs()
        if frame.get_frame_timestamp_domain() in (rs.timestamp_domain.global_time,
                                                  rs.timestamp_domain.system_time):
            return int(frame.get_timestamp() * 1e6)
        return time.time_ns()

    def _device_present(self) -> bool:
        rs = _rs()
        serial = self.info.get("serial", self.serial)
        try:
            return any(d.get_info(rs.camera_info.serial_number) == serial
                       for d in rs.context().query_devices())
        except RuntimeError:
            return False

    def lose(self, reason: str) -> None:
        """Enter RECONNECTING: close the pipeline and retry with backoff from read()."""
        log.warning("camera lost (%s); reconnecting", reason)
        self.last_error = reason
        self._close()
        self._lost.clear()
        self.backoff.reset()
        self.state = RECONNECTING

    def _try_reconnect(self) -> bool:
        try:
            self._open()
        except (SourceError, RuntimeError) as err:
            delay = self.backoff.failed()
            self.last_error = str(err)
            log.info("reconnect attempt %d failed (%s); next in %.1f s",
                     self.backoff.attempts, err, delay)
            return False
        self.state = STREAMING
        self._last_frame = time.monotonic()
        self.backoff.reset()
        return True

    def read(self, timeout: float) -> Frameset | None:
        deadline = time.monotonic() + timeout
        if self.state == RECONNECTING:
            if self.backoff.due() and self._try_reconnect():
                return None
            time.sleep(max(0.0, min(deadline - time.monotonic(),
                                    self.backoff.next_try - time.monotonic())))
            return None
        if self.state != STREAMING:
            return super().read(timeout)
        if self._lost.is_set():
            self.lose("device removed")
            return None
        try:
            fs = self._grab(timeout)
        except RuntimeError as err:
            self.lose(str(err))
            return None
        now = time.monotonic()
        if fs is not None:
            self._last_frame = now
        elif now - self._last_frame > self.reconnect_timeout_s or not self._device_present():
            self.lose(f"no frames for {now - self._last_frame:.1f} s")
        return fs
