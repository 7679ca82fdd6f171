"""camera_node: an RGB + IR + depth camera driver with realsense-ros topics.

A thin ROS shell around a ROS-free FrameSource (depth_ai_nodes/sources/):
`source` picks a live RealSense, a recording, or the built-in scene. One
capture thread reads framesets and hands the newest to one publisher thread
(a frameset the publisher had no time for is counted as dropped, never
queued), which converts and publishes every stream with one stamp. Framesets
the source numbered but never delivered (librealsense's pipeline keeps only
the newest, the scene skips to real time) count as dropped too.

Topics are private (`~/...`) like realsense-ros: node `camera` in the root
namespace publishes /camera/color/image_raw; the realsense-ros launch layout
(namespace `camera`, node `camera`) gives /camera/camera/color/image_raw.
"""
from __future__ import annotations

import gc
import threading
import time
from typing import Any, Callable

import numpy as np
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_ai_nodes.core.stamps import clock_latency
from depth_ai_nodes.core.transforms import RigidTransform
from depth_ai_nodes.msg import Extrinsics, RGBIRDepth
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import tf
from depth_ai_nodes.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from depth_ai_nodes.ros.node_main import ConfigError, announce_first_compile, run_node
from depth_ai_nodes.ros.params import Param, declare
from depth_ai_nodes.ros.qos import QOS_DEPTH_HELP, QOS_NAMES, latched_qos, output_qos
from depth_ai_nodes.sources.base import (ENDED, RECONNECTING, STREAMING, Frameset, FrameSource,
                                         SourceError, frames_missing, parse_profile)
from depth_ai_nodes.sources.frames import FrameNames, matrix_of, static_transforms

NODE_NAME = "camera"
SOURCES = ("realsense", "file", "synthetic", "images")

PARAMETERS: list[Param] = [
    Param("source", "realsense", "Where frames come from: a live RealSense camera, a recording "
          "(file_path), the built-in synthetic scene, or image files (images.*).", choices=SOURCES),
    Param("images.color", "", "source:=images: folder or glob of colour images (any format Pillow "
          "reads)."),
    Param("images.depth", "", "source:=images: folder or glob of depth images registered to colour "
          "(16-bit PNG in images.depth_scale units, float TIFF / .npy in metres); paired by name; "
          "empty: none."),
    Param("images.ir", "", "source:=images: folder or glob of IR images (8/16-bit grey), registered "
          "to colour; empty: none."),
    Param("images.list", "", "source:=images: a list file of 'colour [depth [ir]]' lines (paths "
          "relative to it) instead of pairing by name."),
    Param("images.depth_scale", 0.001, "source:=images: metres per unit of 16-bit depth PNGs "
          "(TUM: 0.0002).", unit="m"),
    Param("images.camera_info", "", "source:=images: calibration from a ROS camera_info YAML "
          "(camera_calibration's format)."),
    Param("images.kitti_calib", "", "source:=images: calibration from a KITTI calib.txt "
          "(K of P<images.kitti_camera>)."),
    Param("images.kitti_camera", 2, "source:=images: which P<n> of images.kitti_calib."),
    Param("images.intrinsics", [0.0], "source:=images: calibration as [fx, fy, cx, cy] (pixels)."),
    Param("images.fps", 10.0, "source:=images: frames per second when there is no timestamps "
          "file.", unit="Hz"),
    Param("images.timestamps", "", "source:=images: a file with one time (s) per frame, or 'time "
          "name' lines (TUM's rgb.txt); frames are stamped and paced by it."),
    Param("images.loop", True, "source:=images: start over at the end (fresh stamps)."),
    Param("file_path", "", "RealSense recording (.bag or .db3) for source:=file."),
    Param("playback.real_time", True, "source:=file: play at the recorded rate (false: as fast "
          "as the node publishes)."),
    Param("playback.loop", False, "source:=file: start over at the end of the file (false: stop "
          "publishing and report state 'ended')."),
    Param("synthetic.seed", 0, "source:=synthetic: scene seed; the same seed renders the same "
          "frames."),
    Param("synthetic.prerender_frames", 0, "source:=synthetic: render this many frames once at "
          "start and replay them in a loop (0: render every frame live). Saves the rendering "
          "CPU (~11-20 ms per 640x480 frameset) on slow machines.", unit="frames"),
    Param("enable_ground_truth", True, "source:=synthetic: publish ground_truth/depth (32FC1 "
          "metres, the exact depth the sensor model corrupts)."),
    Param("camera_name", "camera", "Prefix of every frame id (camera_link, "
          "camera_color_optical_frame, ...)."),
    Param("base_frame_id", "link", "Base frame suffix: the base frame is <camera_name>_<this>."),
    Param("serial_no", "", "source:=realsense: serial number of the camera to open (empty: the "
          "first one found)."),
    Param("initial_reset", False, "source:=realsense: hardware-reset the camera before starting."),
    Param("reconnect_timeout", 6.0, "source:=realsense: with no frame for this long the camera "
          "counts as lost and is reconnected with backoff.", unit="s"),
    Param("enable_color", True, "Publish color/image_raw (rgb8)."),
    Param("enable_depth", True, "Publish depth/image_rect_raw (16UC1, mm)."),
    Param("enable_infra1", True, "Publish infra1/image_rect_raw (mono8, left IR imager)."),
    Param("rgb_camera.color_profile", "640,480,30", "Color stream 'width,height,fps'.",
          unit="px,px,Hz"),
    Param("depth_module.depth_profile", "640,480,30", "Depth stream 'width,height,fps'; its fps "
          "paces the node.", unit="px,px,Hz"),
    Param("depth_module.infra_profile", "640,480,30", "Infrared stream 'width,height,fps' (a "
          "RealSense needs it equal to the depth profile).", unit="px,px,Hz"),
    Param("depth_module.emitter_enabled", 1, "IR projector: 0 off, 1 on (synthetic: dots in "
          "the IR image), -1 leave the device's setting.", choices=(-1, 0, 1, 2)),
    Param("depth_module.depth_units", 0.0, "source:=realsense: depth unit to set on the camera "
          "(0: keep the device's, 0.001 on D400). Published depth is always millimetres when "
          "the unit is 0.001.", unit="m"),
    Param("align_depth.enable", True, "Publish aligned_depth_to_color/image_raw: depth "
          "registered to the color camera (librealsense semantics)."),
    Param("pointcloud.enable", False, "Publish depth/color/points (PointCloud2 x, y, z, rgb)."),
    Param("pointcloud.stride", 1, "Use every n-th pixel in both directions for the point cloud.",
          unit="px"),
    Param("enable_rgbd", False, "Publish rgbd (depth_ai_nodes/RGBIRDepth: one message with "
          "color, IR, depth, their camera_infos and extrinsics)."),
    Param("decimation_filter.enable", False, "Decimate depth (and its camera_info) by "
          "decimation_filter.filter_magnitude."),
    Param("decimation_filter.filter_magnitude", 2, "Decimation factor.", choices=(2, 3, 4, 5, 6,
                                                                                  7, 8)),
    Param("threshold_filter.enable", False, "Zero depth outside [min_distance, max_distance]."),
    Param("threshold_filter.min_distance", 0.1, "Threshold filter near limit.", unit="m"),
    Param("threshold_filter.max_distance", 4.0, "Threshold filter far limit.", unit="m"),
    Param("spatial_filter.enable", False, "librealsense spatial edge-preserving filter "
          "(realsense/file sources)."),
    Param("temporal_filter.enable", False, "librealsense temporal filter (realsense/file "
          "sources)."),
    Param("hole_filling_filter.enable", False, "librealsense hole filling filter "
          "(realsense/file sources)."),
    Param("publish_tf", True, "Publish the camera frame tree on TF (tf2_ros on a ROS install, "
          "else tf2_msgs from our pip install; the extrinsics topics are always published)."),
    Param("tf_publish_rate", 0.0, "As in realsense-ros: > 0 publishes the tree on /tf at this "
          "rate, stamped now; otherwise once on /tf_static (latched).", unit="Hz"),
    Param("qos", "sensor_data", "QoS of image, camera_info and point cloud topics.",
          choices=QOS_NAMES),
    Param("qos_depth", 0, QOS_DEPTH_HELP),
    Param("compressed.enable", False, "Also publish <image>/compressed (sensor_msgs/CompressedImage "
          "as image_transport's compressed plugin writes it) for colour and IR, encoded only while "
          "someone subscribes."),
    Param("compressed.format", "jpeg", "Codec of the compressed streams.", choices=("jpeg", "png")),
    Param("compressed.jpeg_quality", 95, "JPEG quality (1-100)."),
    Param("compressed.png_level", 3, "PNG compression level (0-9)."),
    Param("compressed_depth.enable", False, "Also publish <depth>/compressedDepth (image_transport's "
          "compressed_depth layout: its ConfigHeader + PNG or RVL) for depth and aligned depth, "
          "encoded only while someone subscribes."),
    Param("compressed_depth.format", "png", "Codec of compressedDepth (both lossless for 16UC1).",
          choices=("png", "rvl")),
    Param("compressed_depth.depth_max", 10.0, "compressedDepth: depth beyond this is sent as 0 "
          "(invalid), as the plugin does.", unit="m"),
    Param("compressed_depth.png_level", 1, "compressedDepth PNG compression level (0-9; 1 is fast)."),
]
COMPRESSED_SUFFIX = {"color": "compressed", "infra1": "compressed", "depth": "compressedDepth",
                     "aligned_depth": "compressedDepth"}

# stream key -> (image topic, camera_info topic, optical frame stream name)
TOPICS = {
    "color": ("~/color/image_raw", "~/color/camera_info", "color"),
    "infra1": ("~/infra1/image_rect_raw", "~/infra1/camera_info", "infra1"),
    "depth": ("~/depth/image_rect_raw", "~/depth/camera_info", "depth"),
    "aligned_depth": ("~/aligned_depth_to_color/image_raw",
                      "~/aligned_depth_to_color/camera_info", "color"),
    "ground_truth": ("~/ground_truth/depth", "~/ground_truth/camera_info", "depth"),
}
ENCODINGS = {"color": "rgb8", "infra1": "mono8", "depth": "16UC1", "aligned_depth": "16UC1",
             "ground_truth": "32FC1"}


def _profile(values: dict[str, Any], name: str) -> tuple[int, int, int]:
    try:
        return parse_profile(values[name], name)
    except SourceError as err:
        raise ConfigError(str(err)) from None


def _kernel_modules(values: dict[str, Any]) -> list[Any]:
    """The numba modules this start runs: registration, and the scene's renderer for it."""
    from depth_ai_nodes.core import registration

    mods = [registration]
    if values["source"] == "synthetic":
        from depth_ai_nodes.core.scene import kernels

        mods.append(kernels)
    return mods


def make_source(values: dict[str, Any]) -> FrameSource:
    """The FrameSource the parameters ask for (not started)."""
    from depth_ai_nodes.sources.realsense import FilterSettings, StreamSettings

    filters = FilterSettings(
        decimation=values["decimation_filter.enable"],
        decimation_magnitude=int(values["decimation_filter.filter_magnitude"]),
        threshold=values["threshold_filter.enable"],
        threshold_min_m=float(values["threshold_filter.min_distance"]),
        threshold_max_m=float(values["threshold_filter.max_distance"]),
        spatial=values["spatial_filter.enable"], temporal=values["temporal_filter.enable"],
        hole_filling=values["hole_filling_filter.enable"])
    streams = StreamSettings(
        enable_color=values["enable_color"], enable_depth=values["enable_depth"],
        enable_infra1=values["enable_infra1"],
        color_profile=_profile(values, "rgb_camera.color_profile"),
        depth_profile=_profile(values, "depth_module.depth_profile"),
        infra_profile=_profile(values, "depth_module.infra_profile"), filters=filters)
    source = values["source"]
    if source == "realsense":
        from depth_ai_nodes.sources.realsense import RealSenseSource

        return RealSenseSource(streams, serial=values["serial_no"],
                               emitter_enabled=values["depth_module.emitter_enabled"],
                               depth_units=values["depth_module.depth_units"],
                               initial_reset=values["initial_reset"],
                               reconnect_timeout_s=float(values["reconnect_timeout"]))
    if source == "images":
        from depth_ai_nodes.sources.images import ImageFolderSource, ImageSettings

        if not values["images.color"] and not values["images.list"]:
            raise ConfigError("source:=images needs images.color:=<folder or glob> (or images.list)")
        intr = [float(v) for v in values["images.intrinsics"]]
        if intr != [0.0] and len(intr) != 4:
            raise ConfigError(f"images.intrinsics needs [fx, fy, cx, cy]; got {len(intr)} numbers")
        return ImageFolderSource(ImageSettings(
            color=values["images.color"], depth=values["images.depth"], ir=values["images.ir"],
            list_file=values["images.list"], depth_scale=float(values["images.depth_scale"]),
            camera_info=values["images.camera_info"], kitti_calib=values["images.kitti_calib"],
            kitti_camera=int(values["images.kitti_camera"]), intrinsics=tuple(intr) if intr != [0.0] else (),
            fps=float(values["images.fps"]), timestamps=values["images.timestamps"],
            loop=bool(values["images.loop"])))
    if source == "file":
        from depth_ai_nodes.sources.playback import PlaybackSource

        if not values["file_path"]:
            raise ConfigError("source:=file needs file_path:=<recording .bag or .db3>")
        return PlaybackSource(values["file_path"], streams,
                              real_time=values["playback.real_time"],
                              loop=values["playback.loop"])
    from depth_ai_nodes.sources.synthetic import SyntheticSource

    return SyntheticSource(streams, seed=int(values["synthetic.seed"]),
                           emitter=values["depth_module.emitter_enabled"] != 0,
                           prerender=int(values["synthetic.prerender_frames"]))


class CameraNode(Node):
    """Publishes one source's framesets on realsense-ros topics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        try:
            self.p = declare(self, PARAMETERS)
        except InvalidParameterTypeException as err:  # e.g. serial_no:=123 (an int)
            raise ConfigError(f"{err}; quote strings (serial_no:=\"'123'\"), write floats with "
                              f"a decimal point (max_distance:=4.0)") from None
        try:
            self.qos = output_qos(self.p["qos"], self.p["qos_depth"])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if int(self.p["pointcloud.stride"]) < 1:
            raise ConfigError("pointcloud.stride must be >= 1")
        self.names = FrameNames(self.p["camera_name"], self.p["base_frame_id"])
        announce_first_compile(self, _kernel_modules(self.p))
        try:
            self.source = make_source(self.p)
            self.source.start()
        except SourceError as err:
            raise ConfigError(str(err)) from None
        # expected rate for diagnostics: what the device/file/scene actually runs at
        self.fps = getattr(self.source, "fps", 0.0) \
            or _profile(self.p, "depth_module.depth_profile")[2] or 30

        self.diag = Diagnostics(self, before_publish=self._update_state)  # state: once a second
        self.diag.set_hardware_id(self.source.info.get("serial", self.p["source"]))
        self.enabled = {"color": self.p["enable_color"], "infra1": self.p["enable_infra1"],
                        "depth": self.p["enable_depth"],
                        "aligned_depth": self.p["align_depth.enable"] and self.p["enable_depth"]
                        and self.p["enable_color"],
                        "ground_truth": self.p["source"] == "synthetic"
                        and self.p["enable_ground_truth"]}
        self.image_pubs: dict[str, Any] = {}
        self.info_pubs: dict[str, Any] = {}
        self._compressed_pubs: dict[str, Any] = {}
        self.cloud_pub = (self.create_publisher(PointCloud2, "~/depth/color/points", self.qos)
                          if self.p["pointcloud.enable"] else None)
        self.rgbd_pub = (self.create_publisher(RGBIRDepth, "~/rgbd", self.qos)
                         if self.p["enable_rgbd"] else None)
        self.extr_pubs = {s: self.create_publisher(Extrinsics, f"~/extrinsics/depth_to_{s}",
                                                   latched_qos()) for s in ("color", "infra1")}
        self._extrinsics_sent: set[str] = set()
        self._absent_logged: set[str] = set()
        self._info_cache: dict[tuple, tuple[Any, CameraInfo]] = {}
        self._images: dict[str, Image] = {}
        self._problem: tuple[float, str] | None = None  # (monotonic time, what went wrong)
        available = self.source.available_streams()
        if "depth" in available and "color" in available:
            available.add("aligned_depth")
        for key in TOPICS:  # advertise up front, like realsense-ros
            if self.enabled.get(key) and key in available:
                self._pubs(key)
                self._compressed_pub(key)
        if self.enabled["aligned_depth"] and "aligned_depth" in available:
            # compile/load the registration kernel now, not on the first frameset (the JIT
            # takes ~12 s without numba's cache and would stall the stream mid-flight)
            from depth_ai_nodes.core.registration import warm_up

            warm_up()
        self._tf_rate = float(self.p["tf_publish_rate"])
        self._tf: Any | None = None
        if self.p["publish_tf"]:
            self._tf = tf.broadcaster(self) if self._tf_rate > 0 else tf.static_broadcaster(self)
        self._tf_tree: list[tuple[str, str, RigidTransform]] | None = None
        if self._tf is not None and self._tf_rate > 0:
            self.create_timer(1.0 / self._tf_rate, self._send_dynamic_tf)

        self._lock = threading.Condition()
        self._pending: Frameset | None = None
        self._last_frame: int | None = None
        self._running = True
        self.captured = self.published = self.dropped = 0
        self._state = None
        self._update_state()
        # the start-up heap (rclpy, numpy, numba, the source: ~10^5 objects) out of the collector's
        # full passes, which otherwise cost ~0.1 s of CPU each while streaming
        gc.freeze()
        self._threads = [threading.Thread(target=self._capture_loop, name="capture", daemon=True),
                         threading.Thread(target=self._publish_loop, name="publish", daemon=True)]
        for t in self._threads:
            t.start()
        self.get_logger().info(
            f"source {self.p['source']} {self.source.info} streaming at {self.fps:g} Hz; topics "
            f"under {self.get_fully_qualified_name()}/")

    # --- threads ------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        """Read framesets; leave only the newest for the publisher."""
        while self._running:
            try:
                fs = self.source.read(0.5)
            except Exception as err:  # a bad frame must not kill the node
                self._report(f"source read failed: {err}")
                time.sleep(0.1)
                continue
            if fs is None:
                continue
            with self._lock:
                self.captured += 1
                self.dropped += frames_missing(self._last_frame, fs.frame_number)
                self._last_frame = fs.frame_number
                if self._pending is not None:
                    self.dropped += 1
                self._pending = fs
                self._lock.notify()

    def _publish_loop(self) -> None:
        while self._running:
            with self._lock:
                while self._pending is None and self._running:
                    self._lock.wait(0.5)
                fs, self._pending = self._pending, None
            if fs is None:
                continue
            try:
                self.publish_frameset(fs)
            except Exception as err:  # malformed frameset: log, report, keep running
                if not self._running:
                    break  # shutting down: the context may already be gone
                self._report(f"cannot publish frameset {fs.frame_number}: {err}")

    # --- publishing ---------------------------------------------------------------------

    def _pubs(self, key: str) -> tuple[Any, Any]:
        if key not in self.image_pubs:
            image_topic, info_topic, _ = TOPICS[key]
            self.image_pubs[key] = self.create_publisher(Image, image_topic, self.qos)
            self.info_pubs[key] = self.create_publisher(CameraInfo, info_topic, self.qos)
        return self.image_pubs[key], self.info_pubs[key]

    def _camera_info(self, model: Any, frame_id: str) -> CameraInfo:
        """CameraInfo built once per (model, frame) and reused; only the stamp changes."""
        key = (id(model), frame_id)
        cached = self._info_cache.get(key)
        if cached is None or cached[0] is not model:
            if len(self._info_cache) > 32:  # a looping file reopens with new models
                self._info_cache.clear()
            cached = self._info_cache[key] = (model, conv.model_to_camera_info(model, frame_id=frame_id))
        return cached[1]

    def _image(self, key: str, array: np.ndarray, frame_id: str, stamp: Any) -> Image:
        """The stream's Image message, refilled in place each frameset (publish() has copied the
        previous one): one copy of the pixels, no per-frame allocation."""
        msg = self._images[key] = conv.array_to_image(array, ENCODINGS[key], frame_id=frame_id,
                                                      out=self._images.get(key))
        msg.header.stamp = stamp
        return msg

    def publish_frameset(self, fs: Frameset) -> None:
        """Every stream of `fs` with one stamp: raw streams first (depth leads, as the
        most latency-sensitive), then what is computed from them, in this thread (a worker
        thread for the registration cost ~0.2 ms CPU per frameset in handoffs alone)."""
        stamp = conv.ns_to_stamp(fs.stamp_ns)
        depth_mm = self._depth_mm(fs.depth, fs.depth_scale) if fs.depth is not None else None
        aligned = depth_mm is not None and fs.color is not None and self.enabled["aligned_depth"] \
            and self._has_subscribers(*self._pubs("aligned_depth"),
                                      *[p for p in [self._compressed_pub("aligned_depth")] if p is not None])
        streams: dict[str, tuple[Callable[[], np.ndarray], Any] | None] = {
            "depth": (lambda: depth_mm, fs.depth_model) if depth_mm is not None else None,
            "color": (lambda: fs.color, fs.color_model) if fs.color is not None else None,
            "infra1": (lambda: fs.ir, fs.ir_model) if fs.ir is not None else None,
            "aligned_depth": (lambda: self._aligned(fs, depth_mm), fs.color_model) if aligned else None,
            "ground_truth": (lambda: fs.gt_depth_m.astype(np.float32, copy=False),
                             fs.gt_model or fs.depth_model)
            if fs.gt_depth_m is not None else None,
        }
        self._log_absent(streams)
        msgs: dict[str, tuple[Image, CameraInfo]] = {}
        for key, entry in streams.items():
            if entry is None or not self.enabled.get(key, False):
                continue
            make, model = entry
            try:
                array = make()
            except Exception as err:  # e.g. registration into an unsupported camera model
                self._report(f"{TOPICS[key][0][2:]} not published: {err}")
                continue
            frame_id = self.names.optical(TOPICS[key][2])
            image = self._image(key, array, frame_id, stamp)
            info = self._camera_info(model, frame_id)
            info.header.stamp = stamp
            if (info.width, info.height) != (image.width, image.height):
                raise ValueError(f"{key}: camera_info {info.width}x{info.height} does not "
                                 f"match the image {image.width}x{image.height}")
            image_pub, info_pub = self._pubs(key)
            image_pub.publish(image)
            info_pub.publish(info)
            self._publish_compressed(key, array, image.header)
            msgs[key] = (image, info)
            self.diag.rate("streams", key, self.fps).tick(clock_latency(time.time(), fs.stamp_ns * 1e-9))
        self._send_static(fs, stamp)
        if self.cloud_pub is not None and depth_mm is not None \
                and self._has_subscribers(self.cloud_pub):
            cloud = conv.depth_to_pointcloud2(
                depth_mm, fs.depth_model, depth_scale=0.001,
                color=fs.color, color_model=fs.color_model, depth_to_color=fs.depth_to_color,
                stride=int(self.p["pointcloud.stride"]),
                frame_id=self.names.optical("depth"))
            cloud.header.stamp = stamp
            self.cloud_pub.publish(cloud)
        if self.rgbd_pub is not None and self._has_subscribers(self.rgbd_pub):
            self.rgbd_pub.publish(self._rgbd(fs, stamp, msgs))
        self.published += 1

    def _publish_compressed(self, key: str, array: np.ndarray, header: Any) -> None:
        """<image>/compressed or <depth>/compressedDepth, image_transport's layouts, encoded
        only while the topic has subscribers (core/compressed.py)."""
        pub = self._compressed_pub(key)
        if pub is None or not self._has_subscribers(pub):
            return
        depth = COMPRESSED_SUFFIX[key] == "compressedDepth"
        from depth_ai_nodes.core import compressed

        p = self.p
        if depth:
            fmt, data = compressed.encode_compressed_depth(
                array, ENCODINGS[key], p["compressed_depth.format"], float(p["compressed_depth.depth_max"]),
                png_level=int(p["compressed_depth.png_level"]))
        else:
            fmt, data = compressed.encode_compressed(array, ENCODINGS[key], p["compressed.format"],
                                                     int(p["compressed.jpeg_quality"]), int(p["compressed.png_level"]))
        pub.publish(CompressedImage(header=header, format=fmt, data=data))

    def _compressed_pub(self, key: str) -> Any | None:
        """The <image>/compressed or <depth>/compressedDepth publisher of `key`, when enabled."""
        suffix = COMPRESSED_SUFFIX.get(key)
        if suffix is None or not self.p["compressed_depth.enable" if suffix == "compressedDepth"
                                         else "compressed.enable"]:
            return None
        if key not in self._compressed_pubs:
            self._compressed_pubs[key] = self.create_publisher(CompressedImage, f"{TOPICS[key][0]}/{suffix}",
                                                               self.qos)
        return self._compressed_pubs[key]

    @staticmethod
    def _has_subscribers(*pubs: Any) -> bool:
        return any(pub.get_subscription_count() > 0 for pub in pubs)

    @staticmethod
    def _depth_mm(depth: np.ndarray, scale: float) -> np.ndarray:
        """16UC1 is millimetres (REP-118); rescale cameras set to another depth unit."""
        if abs(scale - 0.001) < 1e-7:
            return depth
        mm = np.rint(depth.astype(np.float32) * (scale * 1000.0))
        return np.clip(mm, 0, 65535).astype(np.uint16)

    def _aligned(self, fs: Frameset, depth_mm: np.ndarray) -> np.ndarray:
        from depth_ai_nodes.core.registration import align_depth_to_color

        return align_depth_to_color(depth_mm, fs.depth_model, fs.color_model, fs.depth_to_color,
                                    depth_scale=0.001)

    def _rgbd(self, fs: Frameset, stamp: Any, msgs: dict[str, tuple[Image, CameraInfo]]
              ) -> RGBIRDepth:
        out = RGBIRDepth()
        out.header.stamp = stamp
        out.header.frame_id = self.names.optical("depth")
        for key, image_field, info_field in (("color", "color", "color_info"),
                                             ("infra1", "ir", "ir_info"),
                                             ("depth", "depth", "depth_info")):
            if key in msgs:
                setattr(out, image_field, msgs[key][0])
                setattr(out, info_field, msgs[key][1])
        if fs.depth_to_color is not None:
            out.depth_to_color = self._extrinsics("color", fs.depth_to_color, stamp)
        if fs.depth_to_ir is not None:
            out.depth_to_ir = self._extrinsics("infra1", fs.depth_to_ir, stamp)
        return out

    def _extrinsics(self, stream: str, transform: Any, stamp: Any) -> Extrinsics:
        msg = conv.extrinsics_to_msg(transform, self.names.optical("depth"),
                                     self.names.optical(stream))
        msg.header.stamp = stamp
        return msg

    def _send_static(self, fs: Frameset, stamp: Any) -> None:
        """Extrinsics (latched) and the static TF tree, once per transform."""
        for stream, transform in (("color", fs.depth_to_color), ("infra1", fs.depth_to_ir)):
            if transform is None or stream in self._extrinsics_sent:
                continue
            self.extr_pubs[stream].publish(self._extrinsics(stream, transform, stamp))
            self._extrinsics_sent.add(stream)
        if self._tf is not None and self._tf_tree is None:
            depth_to = {s: matrix_of(t) for s, t in (("color", fs.depth_to_color),
                                                 ("infra1", fs.depth_to_ir)) if t is not None}
            self._tf_tree = [(parent, child, RigidTransform.from_matrix(pose))
                             for parent, child, pose in static_transforms(self.names, depth_to)]
            if self._tf_rate <= 0:
                self._tf.sendTransform([conv.transform_to_tf(T, parent, child, stamp)
                                        for parent, child, T in self._tf_tree])

    def _send_dynamic_tf(self) -> None:
        """tf_publish_rate > 0: the tree on /tf, stamped now (once the device gave its extrinsics)."""
        tree = self._tf_tree
        if tree is not None:
            now = self.get_clock().now().to_msg()
            self._tf.sendTransform([conv.transform_to_tf(T, parent, child, now)
                                    for parent, child, T in tree])

    def _log_absent(self, streams: dict[str, Any]) -> None:
        for key in ("color", "infra1", "depth"):
            if self.enabled[key] and streams.get(key) is None and key not in self._absent_logged:
                self._absent_logged.add(key)
                self.get_logger().warning(
                    f"the {self.p['source']} source delivers no {key} stream; "
                    f"{TOPICS[key][0][2:]} is not published")

    # --- state and diagnostics ----------------------------------------------------------

    def _report(self, problem: str) -> None:
        """A run-time problem: a log line now, ERROR in diagnostics for the next 5 s."""
        self.get_logger().error(problem, throttle_duration_sec=5.0)
        self._problem = (time.monotonic(), problem)
        self._update_state()

    def _update_state(self) -> None:
        state = getattr(self.source, "state", STREAMING)
        values = dict(self.source.info)
        values.update(state=state, dropped_framesets=self.dropped, captured=self.captured,
                      published=self.published, source=self.p["source"],
                      source_skipped=getattr(self.source, "skipped", 0))
        last_error = getattr(self.source, "last_error", "")
        problem = self._problem
        if problem is not None and time.monotonic() - problem[0] < 5.0:
            self.diag.set("device", ERROR, problem[1], **values)
        elif state == STREAMING:
            self.diag.set("device", OK, "streaming", **values)
        elif state == RECONNECTING:
            self.diag.set("device", WARN, f"reconnecting: {last_error}", **values)
        elif state == ENDED:
            self.diag.set("device", OK, "ended: end of the recording", **values)
        else:
            self.diag.set("device", WARN, state, **values)
        if state != self._state:
            if self._state is not None:
                self.get_logger().info(f"source state: {self._state} -> {state}")
            self._state = state

    def close(self) -> None:
        """Stop the threads and the source (run_node calls this on shutdown)."""
        self._running = False
        with self._lock:
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout=2.0)
        self.source.stop()


def main() -> int:
    return run_node(CameraNode)


if __name__ == "__main__":
    raise SystemExit(main())
