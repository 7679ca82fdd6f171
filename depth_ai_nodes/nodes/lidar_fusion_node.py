"""lidar_fusion_node: LiDAR clouds + the IR camera (optional colour, camera/inference depth)
-> fused/points (x, y, z, intensity, ir[, rgb][, depth_diff]) and lidar_depth (32FC1 m, sparse,
in the IR camera, + lidar_depth/camera_info; lidar_depth_color likewise in the colour camera
when colour is on), optional lidar_overlay (rgb8 debug image).

Thin shell: parameters, messages, QoS, diagnostics. The work is in core/:
projection.py (project, occlusion, lookups, pack), sync.py (matching with slop, offsets,
timeout: a silent camera never stalls the clouds), motion.py (de-skew to the camera's
exposure time with the odometry twist), calibration.py (extrinsics from parameters,
KITTI calib.txt or our YAML); ros/conversions.py reads any PointCloud2 layout and images.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_ai_nodes.core import calibration as calib
from depth_ai_nodes.core.motion import deskew, twist_in_frame
from depth_ai_nodes.core.projection import Intrinsics, Projection, Projector, pack_rows
from depth_ai_nodes.core.stamps import clock_latency
from depth_ai_nodes.core.sync import ApproxTimeMatcher, Match
from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import inputs
from depth_ai_nodes.ros import tf
from depth_ai_nodes.ros.inputs import CloudData, HeldImage, InputGate, Reason, Rejected
from depth_ai_nodes.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from depth_ai_nodes.ros.node_main import ConfigError, announce_first_compile, run_node
from depth_ai_nodes.ros.params import Param, declare
from depth_ai_nodes.ros.qos import (QOS_NAMES, history_depth, input_qos_depth_help, latched_qos, matching_qos,
                                    qos_from_name)

# subscription depths: a few sensor messages (the newest pair is what fuses), more odometry (the
# de-skew interpolates between samples around a scan)
SENSOR_DEPTH, ODOMETRY_DEPTH = 5, 20
POLL_PERIOD_S = 0.02  # how often a waiting cloud is re-decided (sync_timeout granularity)

PARAMETERS: list[Param] = [
    Param("cloud_topic", "/lidar/points", "Input LiDAR PointCloud2 (needs x, y, z; intensity, t used if present)."),
    Param("ir_topic", "/camera/infra1/image_rect_raw", "IR image (mono8/mono16/32FC1); none with a "
          "color_topic: colour-only fusion (the extrinsics then map into the colour camera, fields "
          "x y z intensity rgb)."),
    Param("ir_info_topic", "/camera/infra1/camera_info", "CameraInfo of the IR image."),
    Param("color_topic", "", "Colour image (rgb8/bgr8) for the rgb field; empty: no colour."),
    Param("color_info_topic", "/camera/color/camera_info", "CameraInfo of the colour image."),
    Param("color_extrinsics_topic", "/camera/extrinsics/depth_to_color",
          "Extrinsics IR/depth -> colour camera (depth_ai_nodes/Extrinsics)."),
    Param("depth_topic", "", "Camera or inference depth in the IR camera (32FC1 m or 16UC1 mm) for "
          "the depth_diff field; empty: none."),
    Param("depth_camera", "ir", "Geometry of depth_topic: the IR/depth camera, or the colour camera "
          "(e.g. the inference node's depth; needs the colour camera_info and extrinsics).",
          choices=("ir", "color")),
    Param("depth_scale", 0.001, "Metres per unit of a 16UC1 depth image.", "m"),
    Param("odom_topic", "/lidar/odom", "nav_msgs/Odometry for motion compensation; empty: off."),
    Param("twist_topic", "", "geometry_msgs/TwistStamped (body twist, header.frame_id = the body) "
          "for motion compensation instead of odometry; empty: off."),
    Param("odom_lidar_xyz", [0.0, 0.0, 0.0], "LiDAR position in the odometry's child frame "
          "(ignored when the odometry is of the LiDAR frame).", "m"),
    Param("odom_lidar_quat_xyzw", [0.0, 0.0, 0.0, 1.0], "LiDAR orientation in the odometry's child frame."),
    Param("extrinsics_source", "topic", "Where LiDAR -> camera comes from.",
          choices=("topic", "parameters", "file", "tf")),
    Param("extrinsics_topic", "/lidar/extrinsics/lidar_to_camera",
          "depth_ai_nodes/Extrinsics (latched) mapping LiDAR points into the IR camera."),
    Param("extrinsics_xyz", [0.0, 0.0, 0.0], "parameters: translation camera <- LiDAR.", "m"),
    Param("extrinsics_quat_xyzw", [0.0, 0.0, 0.0, 1.0], "parameters: rotation camera <- LiDAR."),
    Param("extrinsics_matrix", [0.0], "parameters: camera <- LiDAR, row-major: a rigid 4x4 (16 numbers) "
          "or 3x4 (12), or a projection lidar2img / KITTI P2 @ R0_rect @ Tr (3x4 or 4x4), decomposed into "
          "K [R | t] (K then checked against the camera_info, or used when there is none); overrides "
          "xyz/quat when given."),
    Param("calibration_file", "", "file: KITTI calib.txt or our extrinsics YAML (docs/fusion.md)."),
    Param("kitti_camera", 2, "file: which KITTI camera P<n> (its rectified frame)."),
    Param("target_frame", "", "Frame of fused/points: empty = the LiDAR frame, or the camera's frame."),
    Param("slop", 0.05, "Largest |camera - LiDAR| time difference that still matches.", "s"),
    Param("sync_timeout", 0.15, "Longest a cloud waits for its camera frame before going out without.", "s"),
    Param("camera_silent_after", 1.0, "No IR frame for this long: the camera counts as silent and "
          "clouds go out at once, without waiting sync_timeout.", "s"),
    Param("camera_time_offset", 0.0, "Added to camera stamps (camera clock -> common clock).", "s"),
    Param("lidar_time_offset", 0.0, "Added to LiDAR stamps (LiDAR clock -> common clock).", "s"),
    Param("sync_reference", "mid_scan", "The cloud time matched to a camera frame: the stamp, or "
          "stamp + half the scan (when the forward view is swept, e.g. Ouster and the scene).",
          choices=("stamp", "mid_scan")),
    Param("min_depth", 0.1, "Nearest depth projected.", "m"),
    Param("max_depth", 100.0, "Farthest depth projected.", "m"),
    Param("splat_px", 2, "Occlusion footprint radius of each point.", "px"),
    Param("occlusion_rel_tol", 0.05, "A point is occluded when a point within splat_px is nearer by "
          "more than max(abs, rel * depth).", "ratio"),
    Param("occlusion_abs_tol", 0.1, "See occlusion_rel_tol.", "m"),
    Param("threads", 2, "Threads of one fusion: 2 packs the rows beside the projection and splits the "
          "occlusion test and lookups (clouds of 40k points or more; the output is the same bit for bit); "
          "1 keeps all of it on the fusion thread.", choices=(1, 2)),
    Param("publish_overlay", False, "Publish lidar_overlay: the IR image with the visible points."),
    Param("qos", "sensor_data", "QoS of the outputs.", choices=QOS_NAMES),
    Param("input_qos", "auto", "QoS of the sensor subscriptions: auto (match the publishers found at "
          "start, best effort when none: it matches both), or reliable (across machines: a lost "
          "fragment is resent; needs reliable publishers).", choices=("auto", "reliable")),
    Param("input_qos_depth", 0, input_qos_depth_help(f"{SENSOR_DEPTH} for images and clouds, "
                                                     f"{ODOMETRY_DEPTH} for odometry (which keeps "
                                                     f"{ODOMETRY_DEPTH} if this is smaller)")),
    Param("ir_transport", "raw", "How the IR image arrives: raw, or image_transport's compressed "
          "(<ir_topic>/compressed).", choices=("raw", "compressed")),
    Param("color_transport", "raw", "How the colour image arrives: raw or compressed "
          "(<color_topic>/compressed).", choices=("raw", "compressed")),
    Param("depth_transport", "raw", "How depth_topic arrives: raw or compressedDepth "
          "(<depth_topic>/compressedDepth, PNG or RVL).", choices=("raw", "compressedDepth")),
    Param("cloud_transport", "raw", "How cloud_topic arrives: raw, or point_cloud_transport's zstd or "
          "zlib (<cloud_topic>/zstd, point_cloud_interfaces/CompressedPointCloud2).",
          choices=inputs.CLOUD_TRANSPORTS),
    *inputs.STAMP_PARAMETERS,
]

@dataclass
class CameraFrame:
    """A matched camera's frame, its pixels read when a cloud is fused with it (`ir`, set by
    `_decoded`): at 30 fps with a 10 Hz LiDAR two of three are never used, and decoding each
    compressed one in the callbacks delayed the frames behind it past sync_timeout."""
    stamp: Any
    image: HeldImage
    info: CameraInfo

    @property
    def ir(self) -> np.ndarray | None:
        """The IR (or, colour-only, the RGB) pixels once read; None before or when rejected."""
        return self.image.array


class LidarFusionNode(Node):
    """Callbacks validate (ros/inputs) and store; decided clouds go to a latest-wins slot
    that one worker thread fuses, so a node fed faster than it fuses drops (and counts)
    the oldest cloud instead of queueing latency."""

    def __init__(self) -> None:
        super().__init__("lidar_fusion_node")
        p = declare(self, PARAMETERS)
        self.p = p
        _check_parameters(p)
        self.sensor_depth = int(p["input_qos_depth"]) or SENSOR_DEPTH
        # colour-only cameras (KITTI image_2, nuScenes): no IR topic, the LiDAR extrinsics map
        # into the colour camera directly, fused points carry rgb instead of ir
        self.color_only = not p["ir_topic"] and bool(p["color_topic"])
        self._frame_stream = "color" if self.color_only else "ir"
        self._frame_encodings = inputs.COLOR_ENCODINGS if self.color_only else inputs.MONO_ENCODINGS
        if not p["ir_topic"] and not p["color_topic"]:
            raise ConfigError("ir_topic and color_topic are both off: the node needs a camera (IR, or "
                              "colour alone with the LiDAR extrinsics into the colour camera)")
        from depth_ai_nodes.core import motion, pointcloud, projection

        announce_first_compile(self, [projection, pointcloud, motion])  # compiled at the first cloud
        self.diag = Diagnostics(self)
        self.gate = InputGate(self, self.diag, inputs.stamp_policy(p))
        self.out_qos = qos_from_name(p["qos"])
        self.matcher: ApproxTimeMatcher = ApproxTimeMatcher(
            slop=float(p["slop"]), timeout=float(p["sync_timeout"]),
            silent_after=float(p["camera_silent_after"]),
            frame_offset=float(p["camera_time_offset"]), cloud_offset=float(p["lidar_time_offset"]))
        self.extrinsics: np.ndarray | None = None   # camera <- LiDAR
        self.matrix_K: np.ndarray | None = None      # K of an extrinsics_matrix given as a projection
        self.depth_to_color: np.ndarray | None = None
        self._load_static_extrinsics(p)
        self.projector: Projector | None = None
        self._proj_key: tuple | None = None
        self.color_projector: Projector | None = None
        self.info: CameraInfo | None = None
        self.color_info: CameraInfo | None = None
        self.colors: deque = deque(maxlen=30)
        self.depths: deque = deque(maxlen=30)
        self.odoms: deque = deque(maxlen=50)
        self._await_odom: list = []
        try:
            self.odom_lidar = calib.from_xyz_quat(p["odom_lidar_xyz"], p["odom_lidar_quat_xyzw"])
        except calib.CalibrationError as err:
            raise ConfigError(f"odom_lidar_xyz / odom_lidar_quat_xyzw: {err}") from err
        self.counts = {"clouds": 0, "fused": 0, "unmatched": 0, "rejected": 0, "dropped_points": 0,
                       "deskewed": 0, "dropped_overload": 0}
        # state shared by the executor's callbacks and the fusion worker
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._slot: Match | None = None
        self._stop = False

        self.fused_pub = self.create_publisher(PointCloud2, "fused/points", self.out_qos)
        self._last_cloud: PointCloud2 | None = None  # its buffer is reused for the next cloud
        self.depth_pub = self.create_publisher(Image, "lidar_depth", self.out_qos)
        self.depth_info_pub = self.create_publisher(CameraInfo, "lidar_depth/camera_info", self.out_qos)
        # the same in the colour camera (the inference node's sparse_topic), advertised only when
        # something can be published there: a topic that never publishes misleads rviz2 users
        # (a colour camera to fuse, or a depth in its geometry: the colour camera's info is needed)
        self._colour_geometry = bool(p["color_topic"]) or p["depth_camera"] == "color"
        self.depth_color_pub = (self.create_publisher(Image, "lidar_depth_color", self.out_qos)
                                if self._colour_geometry else None)
        self.depth_color_info_pub = (self.create_publisher(CameraInfo, "lidar_depth_color/camera_info",
                                                           self.out_qos) if self._colour_geometry else None)
        self._color_key: tuple | None = None
        self.overlay_pub = (self.create_publisher(Image, "lidar_overlay", self.out_qos)
                            if p["publish_overlay"] else None)
        self.rate = self.diag.rate("fusion", "fused", 0.0)
        self.diag.set("fusion", WARN, "waiting for clouds")
        self._subs: dict[str, Any] = {}
        try:
            cloud_sub = self.gate.cloud_transport("cloud", p["cloud_topic"], p["cloud_transport"], self._on_cloud)
        except ImportError as err:
            raise ConfigError(f"cloud_transport {p['cloud_transport']}: {err}") from err
        self._cloud_topic = cloud_sub[0]
        self._wanted: dict[str, tuple[type, Any]] = {self._cloud_topic: cloud_sub[1:]}
        if self.color_only:  # the colour camera is the camera: its frames are matched, no IR
            self._want_image(p["color_topic"], p["color_transport"], self._on_ir)
            self._wanted[p["color_info_topic"]] = (CameraInfo, self._on_info)
        else:
            self._want_image(p["ir_topic"], p["ir_transport"], self._on_ir)
            self._wanted[p["ir_info_topic"]] = (CameraInfo, self._on_info)
            if p["color_topic"]:
                self._want_image(p["color_topic"], p["color_transport"], self._on_color)
            if self._colour_geometry:
                self._wanted[p["color_info_topic"]] = (CameraInfo, self._on_color_info)
                self._wanted[p["color_extrinsics_topic"]] = (Extrinsics, self._on_color_extrinsics)
        if p["depth_topic"]:
            self._want_image(p["depth_topic"], p["depth_transport"], self._on_depth)
        if p["odom_topic"]:
            self._wanted[p["odom_topic"]] = (Odometry, self._on_odom)
        if p["twist_topic"]:
            self._wanted[p["twist_topic"]] = (TwistStamped, self._on_twist)
        if p["extrinsics_source"] == "topic":
            self._wanted[p["extrinsics_topic"]] = (Extrinsics, self._on_extrinsics)
        self._tf = self._make_tf() if p["extrinsics_source"] == "tf" else None
        self._subscribe()
        # decides clouds whose camera frame (or odometry) never came; armed only while one waits:
        # each tick is a round of rclpy's executor (~0.7 ms CPU here), 50 a second for nothing
        self._poll_timer = self.create_timer(POLL_PERIOD_S, self._poll)
        self._poll_timer.cancel()
        self._worker = threading.Thread(target=self._work, name="fusion", daemon=True)
        self._worker.start()

    # --- set-up -----------------------------------------------------------------------
    def _load_static_extrinsics(self, p: dict) -> None:
        try:
            src = p["extrinsics_source"]
            if src == "parameters":
                m = [float(v) for v in p["extrinsics_matrix"]]
                if m == [0.0]:  # the default: not given, xyz + quaternion apply
                    self.extrinsics = calib.from_xyz_quat(p["extrinsics_xyz"], p["extrinsics_quat_xyzw"])
                elif len(m) in (12, 16):  # rigid, or a projection (lidar2img) = K [R | t]
                    self.extrinsics, self.matrix_K = calib.interpret_matrix(m)
                else:
                    raise ConfigError(f"extrinsics_matrix has {len(m)} numbers; give 16 (4x4 row-major) "
                                      f"or 12 (the top 3x4) of a rigid transform or a projection, or leave it "
                                      f"unset to use extrinsics_xyz and extrinsics_quat_xyzw")
            elif src == "file":
                if not p["calibration_file"]:
                    raise ConfigError("extrinsics_source file needs calibration_file (KITTI calib.txt "
                                      "or our extrinsics YAML)")
                ext, _ = calib.load_calibration_file(p["calibration_file"], int(p["kitti_camera"]))
                self.extrinsics = ext.matrix
        except calib.CalibrationError as err:
            raise ConfigError(str(err)) from err

    def _want_image(self, topic: str, transport: str, callback: Any) -> None:
        """An image subscription, raw or through image_transport's compressed layouts; its
        frames are held unread (`inputs.HeldImage`) and read when a cloud uses one."""
        where, typ = inputs.transport_topic(topic, transport)
        self._wanted[where] = (typ, callback)

    def _make_tf(self) -> Any:
        listener = tf.transform_listener(self, self.gate)
        if listener is None:
            raise ConfigError("extrinsics_source tf needs tf2_ros (a ROS install) or tf2_msgs "
                              "(built by our pip install); use topic, parameters or file")
        return listener

    def _subscribe(self) -> None:
        """Subscribe with QoS matched to the publishers (best effort when none yet: it
        matches reliable and best-effort publishers alike); latched topics transient-local
        so a calibration sent before we started still arrives."""
        for topic, (typ, cb) in self._wanted.items():
            depth = max(ODOMETRY_DEPTH, self.sensor_depth) if typ in (Odometry, TwistStamped) else self.sensor_depth
            qos = latched_qos() if typ is Extrinsics else \
                qos_from_name("reliable", depth) if self.p["input_qos"] == "reliable" else \
                matching_qos(self, topic, depth=depth)
            # scans: only the newest queued one is decoded (the worker fuses the latest anyway)
            self._subs[topic] = self.gate.subscribe(typ, topic, cb, qos, newest_only=topic == self._cloud_topic)

    # --- camera side: validate at the boundary, store -------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        model = self.gate.read("ir camera_info", inputs.camera_info, msg, stamped=False)
        if model is None:
            return
        if self.matrix_K is not None and not np.allclose(model.K, self.matrix_K, rtol=0.01, atol=0.5):
            self.gate.reject("ir camera_info", Rejected(Reason.MISMATCH, (
                f"its K {np.round(model.K, 2).tolist()} differs from the K of extrinsics_matrix (a "
                f"projection) {np.round(self.matrix_K, 2).tolist()}: one of the two is for another camera")))
            return
        self.info = msg

    def _on_ir(self, msg: Image | CompressedImage) -> None:
        """The matched camera's frame: IR (mono), or colour (RGB) in colour-only mode; checked
        for its header or size and its stamp here, read when a cloud is fused with it."""
        held, reset = self.gate.hold_image(self._frame_stream, msg, self._frame_encodings)
        frame = CameraFrame(msg.header.stamp, held, self.info) if held is not None else None
        if frame is not None and self.info is None and self.matrix_K is not None:
            frame = self._decoded(frame)  # its size makes the camera_info (none needed): read it now
            if frame is not None:
                self.info = frame.info = _info_from_k(self.matrix_K, frame.ir.shape, msg.header.frame_id)
        if frame is None or self.info is None:
            return
        with self._lock:
            if reset:  # a dead timeline must not stay "the newest frame"
                self.matcher.frames.clear()
            matches = self.matcher.add_frame(conv.stamp_to_s(msg.header.stamp), frame, time.monotonic())
        self._emit(matches)

    def _decoded(self, frame: CameraFrame) -> CameraFrame | None:
        """The frame with its pixels read (once: the frame may match several clouds), or None
        when the image is corrupt (rejected with its reason and counted once)."""
        reader = inputs.color_image if self.color_only else inputs.mono_image
        transport = self.p["color_transport" if self.color_only else "ir_transport"]
        return frame if self.gate.pixels(self._frame_stream, frame.image, reader, transport) is not None else None

    def _on_color(self, msg: Image | CompressedImage) -> None:
        self._store_held(self.colors, *self.gate.hold_image("color", msg, inputs.COLOR_ENCODINGS))

    def _on_color_info(self, msg: CameraInfo) -> None:
        if self.gate.read("colour camera_info", inputs.camera_info, msg, stamped=False) is not None:
            self.color_info = msg

    def _on_color_extrinsics(self, msg: Extrinsics) -> None:
        m = self.gate.read("depth_to_color extrinsics", inputs.extrinsics, msg, stamped=False)
        if m is not None:
            self.depth_to_color = m

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        self._store_held(self.depths, *self.gate.hold_image("depth", msg, inputs.DEPTH_ENCODINGS))

    def _store_held(self, buf: deque, held: HeldImage | None, reset: bool) -> None:
        """A checked image into its buffer (emptied first when its timeline restarted)."""
        if held is None:
            return
        with self._lock:
            if reset:
                buf.clear()
            buf.append(held)

    def _on_odom(self, msg: Odometry) -> None:
        self._on_motion("odometry", msg)

    def _on_twist(self, msg: TwistStamped) -> None:
        self._on_motion("twist", msg)

    def _on_motion(self, stream: str, msg: Odometry | TwistStamped) -> None:
        tw, reset = self.gate.read_stamped(stream, inputs.twist, msg)
        if tw is None:
            return
        with self._lock:
            if reset:
                self.odoms.clear()
            self.odoms.append((tw.stamp_s, tw.linear, tw.angular, tw.frame_id))

    def _on_extrinsics(self, msg: Extrinsics) -> None:
        m = self.gate.read("extrinsics", inputs.extrinsics, msg, stamped=False)
        if m is not None:
            self.extrinsics = m
            self.get_logger().info(f"extrinsics {msg.header.frame_id} -> {msg.child_frame_id} received")

    # --- LiDAR side -------------------------------------------------------------------
    def _on_cloud(self, msg: PointCloud2 | inputs.DecompressedCloud) -> None:
        with self._lock:
            self.counts["clouds"] += 1
        data = self.gate.read("cloud", inputs.cloud, msg)
        if data is None:
            with self._lock:
                self.counts["rejected"] += 1
            return
        for note in data.notes:
            self.gate.reject("cloud", note, used=True)
        ref = data.stamp_s
        if self.p["sync_reference"] == "mid_scan" and "t" in data.cols:
            ref += 0.5 * float(data.cols["t"].max())
        with self._lock:
            self.counts["dropped_points"] += data.dropped_points
            matches = self.matcher.add_cloud(ref, data, time.monotonic())
        self._emit(matches)

    def _poll(self) -> None:
        with self._lock:
            matches = self.matcher.poll(time.monotonic())
        self._emit(matches)

    def _arm_poll(self) -> None:
        """Poll while a cloud waits for its camera frame or odometry, not otherwise (called
        from the executor thread only, as `_poll` is)."""
        with self._lock:
            waiting = bool(self.matcher.pending)
        waiting = waiting or bool(self._await_odom)
        if waiting and self._poll_timer.is_canceled():
            self._poll_timer.reset()
        elif not waiting and not self._poll_timer.is_canceled():
            self._poll_timer.cancel()

    def _emit(self, matches: list[Match]) -> None:
        """Hand decided clouds to the worker; a cloud matched to a camera frame first waits
        (within sync_timeout) for the odometry at its mid-scan time, which de-skewing needs:
        the twist of a few scans ago is off by pixels on a turning robot. The worker slot
        holds one cloud: a newer one replaces it (latest wins, the older counted dropped)."""
        now = time.monotonic()
        with self._cv:
            ready, waiting = [], []
            for m, deadline in [*self._await_odom, *((m, now + float(self.p["sync_timeout"])) for m in matches)]:
                (waiting if self._needs_odom(m) and now < deadline else ready).append((m, deadline))
            self._await_odom = waiting
            for m, _ in ready:
                if self._slot is not None:
                    self.counts["dropped_overload"] += 1
                self._slot = m
            if ready:
                self._cv.notify()
        self._arm_poll()

    def _work(self) -> None:
        while True:
            with self._cv:
                while self._slot is None and not self._stop:
                    self._cv.wait(timeout=0.5)
                if self._stop:
                    return
                m, self._slot = self._slot, None
            try:
                self._fuse(m)
            except Exception as err:  # never let one bad cloud stop the worker
                if not self.context.ok():
                    return
                self._bad_input("fusion", f"fusion failed ({type(err).__name__}): {err}")

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)

    def _needs_odom(self, m: Match) -> bool:
        if m.frame is None or not (self.p["odom_topic"] or self.p["twist_topic"]) or not self.odoms:
            return False  # no odometry at all: fuse without compensation, do not wait
        data: CloudData = m.cloud
        if "t" not in data.cols:
            return False
        t_mid = data.stamp_s + float(self.p["lidar_time_offset"]) + 0.5 * float(data.cols["t"].max())
        return self.odoms[-1][0] < t_mid - 1e-3

    def _fuse(self, m: Match) -> None:
        data: CloudData = m.cloud
        cols = data.cols
        n = data.size
        inten = cols.get("intensity")
        inten = inten.astype(np.float32, copy=False) if inten is not None else np.full(n, np.nan, np.float32)
        frame: CameraFrame | None = self._decoded(m.frame) if m.frame is not None else None
        extr = self.extrinsics if self._tf is None else self._tf_extrinsics(data, frame)
        if self.color_only:
            self._fuse_color_only(m, data, frame, extr)
            return
        names = ["x", "y", "z", "intensity", "ir"]
        with self._lock:  # the callbacks append to these while the worker fuses
            color_held = self._nearest(self.colors, m.frame_time) if frame is not None else None
            ref_held = self._nearest(self.depths, m.frame_time) if frame is not None else None
            odoms = list(self.odoms)
        use_rgb, use_ref = bool(self.p["color_topic"]), bool(self.p["depth_topic"])
        if frame is None or extr is None:
            self._publish_unmatched(m, data, inten, names + (["rgb"] if use_rgb else []) +
                                    (["depth_diff"] if use_ref else []), frame, extr)
            return
        color, ref = self._color_pixels(color_held), self._depth_pixels(ref_held)  # read only now
        projector = self._projector(frame.info)
        proj_xyz = self._deskewed(data, m.frame_time, odoms)
        with self._lock:
            self.counts["deskewed"] += proj_xyz is not None
        ir = frame.ir if frame.ir.shape[:2] == (projector.intr.height, projector.intr.width) else None
        if ir is None:
            self._bad_input("ir", f"IR image {frame.ir.shape[1]}x{frame.ir.shape[0]} does not match its "
                            f"camera_info {projector.intr.width}x{projector.intr.height}")
        in_color = self.p["depth_camera"] == "color"
        ref_ir = None if in_color else ref
        if ref_ir is not None and ref_ir.shape[:2] != frame.ir.shape[:2]:
            self._bad_input("depth", "depth image size differs from the IR camera; depth_diff NaN "
                            "(set depth_camera: color for a depth in the colour geometry)")
            ref_ir = None
        if use_rgb:
            names.append("rgb")
        if use_ref:
            names.append("depth_diff")
        msg, rows = self._cloud_rows(n, len(names))
        rows, proj = projector.fuse(cols["x"], cols["y"], cols["z"], inten, extr, ir, ref_depth=ref_ir,
                                    proj_xyz=proj_xyz, out=rows, ref_column=len(names) - 1 if use_ref else None)
        cproj = (self._color_projection(cols, proj_xyz, extr, rows, color, ref, use_rgb, use_ref and in_color)
                 if (use_rgb or in_color) else None)
        if cproj is not None:
            self._publish_depth(self.color_projector, cproj, frame.stamp, self.color_info,
                                self.depth_color_pub, self.depth_color_info_pub)
        self._publish(data, rows, names, extr, frame, msg)
        self._publish_depth(projector, proj, frame.stamp, frame.info, self.depth_pub, self.depth_info_pub)
        if self.overlay_pub is not None and ir is not None:
            self._publish_overlay(ir, proj, frame)
        self._report(n, proj.in_view, proj.occluded, m, matched=True)

    def _publish_unmatched(self, m: Match, data: CloudData, inten: np.ndarray, names: list[str],
                           frame: CameraFrame | None, extr) -> None:
        """The cloud with every camera field NaN: no camera frame within slop, or no extrinsics."""
        if frame is not None and extr is None:
            self.get_logger().warn("no LiDAR -> camera extrinsics yet (extrinsics_source "
                                   f"{self.p['extrinsics_source']}): camera fields NaN", throttle_duration_sec=5.0)
        with self._lock:
            self.counts["unmatched"] += 1
        msg, rows = self._cloud_rows(data.size, len(names))
        pack_rows(data.cols["x"], data.cols["y"], data.cols["z"], inten, rows)
        self._publish(data, rows, names, extr, None, msg)
        self._report(data.size, 0, 0, m, matched=False)

    def _fuse_color_only(self, m: Match, data: CloudData, frame: CameraFrame | None, extr) -> None:
        """Colour camera only: x y z intensity rgb [depth_diff], the LiDAR depth in the colour
        camera on both lidar_depth and lidar_depth_color (the inference node's sparse input)."""
        cols, n = data.cols, data.size
        inten = cols["intensity"] if "intensity" in cols else np.full(n, np.nan, np.float32)
        use_ref = bool(self.p["depth_topic"])
        names = ["x", "y", "z", "intensity", "rgb"] + (["depth_diff"] if use_ref else [])
        with self._lock:
            ref_held = self._nearest(self.depths, m.frame_time) if frame is not None else None
            odoms = list(self.odoms)
        if frame is None or extr is None:
            self._publish_unmatched(m, data, inten, names, frame, extr)
            return
        ref = self._depth_pixels(ref_held)  # read only now
        projector = self._projector(frame.info)
        proj_xyz = self._deskewed(data, m.frame_time, odoms)
        size = (projector.intr.height, projector.intr.width)
        rgb = frame.ir if frame.ir.shape[:2] == size else None
        if rgb is None:
            self._bad_input("color", f"colour image {frame.ir.shape[1]}x{frame.ir.shape[0]} does not match its "
                            f"camera_info {size[1]}x{size[0]}")
        if ref is not None and ref.shape[:2] != size:
            self._bad_input("depth", "depth image size differs from the colour camera_info; depth_diff NaN")
            ref = None
        msg, rows = self._cloud_rows(n, len(names))
        rows, proj = projector.fuse(cols["x"], cols["y"], cols["z"], inten, extr, None, rgb=rgb, ref_depth=ref,
                                    proj_xyz=proj_xyz, out=rows, rgb_column=4, ref_column=5 if use_ref else None)
        with self._lock:
            self.counts["deskewed"] += proj_xyz is not None
        self._publish(data, rows, names, extr, frame, msg)
        self._publish_depth(projector, proj, frame.stamp, frame.info, self.depth_pub, self.depth_info_pub)
        self._publish_depth(projector, proj, frame.stamp, frame.info, self.depth_color_pub,
                            self.depth_color_info_pub)
        self._report(n, proj.in_view, proj.occluded, m, matched=True)

    def _projector(self, info: CameraInfo) -> Projector:
        key = (info.width, info.height, tuple(info.k), tuple(info.d), info.distortion_model)
        if key != self._proj_key:
            intr = Intrinsics.from_camera_model(conv.camera_info_to_model(info))
            p = self.p
            if self.projector is not None:
                self.projector.close()
            self.projector = Projector(intr, p["min_depth"], p["max_depth"], int(p["splat_px"]),
                                       p["occlusion_rel_tol"], p["occlusion_abs_tol"], int(p["threads"]))
            self._proj_key = key
        return self.projector

    def _deskewed(self, data: CloudData, frame_time: float | None, odoms: list):
        """Points moved to the camera's time with the odometry twist (projection only)."""
        cols = data.cols
        if frame_time is None or not odoms or "t" not in cols:
            return None
        cloud_t = data.stamp_s + float(self.p["lidar_time_offset"])
        t_mid = cloud_t + 0.5 * float(cols["t"].max())
        _, v, w, child = min(odoms, key=lambda o: abs(o[0] - t_mid))
        if child and child != data.frame_id:
            v, w = twist_in_frame(v, w, self.odom_lidar)
        return deskew(cols["x"], cols["y"], cols["z"], cols["t"], frame_time - cloud_t, v, w)

    def _color_projection(self, cols, proj_xyz, extr, rows: np.ndarray, color: np.ndarray | None,
                          ref: np.ndarray | None, use_rgb: bool, ref_in_color: bool) -> Projection | None:
        """The cloud in the colour camera (IR/depth -> colour extrinsics from the camera node):
        rgb (column 5) and, for a depth in the colour geometry, depth_diff (the last column)
        written into the fused rows where visible. None until the colour camera_info and
        extrinsics have arrived."""
        info = self.color_info
        if info is None or self.depth_to_color is None:
            self.get_logger().warn("no colour camera_info / depth_to_color extrinsics yet: rgb and "
                                   "colour-geometry fields NaN", throttle_duration_sec=10.0)
            return None
        key = (info.width, info.height, tuple(info.k), tuple(info.d), info.distortion_model)
        if self.color_projector is None or self._color_key != key:
            intr = Intrinsics.from_camera_model(conv.camera_info_to_model(info))
            p = self.p
            if self.color_projector is not None:
                self.color_projector.close()
            self.color_projector = Projector(intr, p["min_depth"], p["max_depth"], int(p["splat_px"]),
                                             p["occlusion_rel_tol"], p["occlusion_abs_tol"], int(p["threads"]))
            self._color_key = key
        size = (self.color_projector.intr.height, self.color_projector.intr.width)
        rgb = color if use_rgb and color is not None and color.shape[:2] == size else None
        if ref_in_color and ref is not None and ref.shape[:2] != size:
            self._bad_input("depth", "depth image size differs from the colour camera_info")
            ref = None
        ref = ref if ref_in_color else None
        _, cproj = self.color_projector.fuse(
            cols["x"], cols["y"], cols["z"], None, self.depth_to_color @ extr, None, rgb=rgb, ref_depth=ref,
            proj_xyz=proj_xyz, out=rows, rgb_column=5, ref_column=rows.shape[1] - 1 if ref is not None else None,
            pack=False)
        return cproj

    @staticmethod
    def _nearest(buf: deque, t: float | None) -> HeldImage | None:
        if t is None or not buf:
            return None
        held = min(buf, key=lambda e: abs(e.stamp_s - t))
        return held if abs(held.stamp_s - t) <= 0.5 else None

    def _color_pixels(self, held: HeldImage | None) -> np.ndarray | None:
        """The colour image's RGB pixels, read (decoded) in the worker when a cloud uses it."""
        return None if held is None else self.gate.pixels("color", held, inputs.color_image,
                                                          self.p["color_transport"])

    def _depth_pixels(self, held: HeldImage | None) -> np.ndarray | None:
        """The reference depth in metres, read (decoded) in the worker when a cloud uses it."""
        return None if held is None else self.gate.pixels("depth", held, inputs.depth_image,
                                                          self.p["depth_transport"], float(self.p["depth_scale"]))

    def _tf_extrinsics(self, data: CloudData, frame: CameraFrame | None) -> np.ndarray | None:
        if frame is None:
            return None
        try:
            stamped = self._tf.lookup_transform(frame.info.header.frame_id, data.frame_id, data.stamp)
        except Exception as err:  # tf2 exceptions: no transform yet
            self.get_logger().warn(f"no TF {data.frame_id} -> camera: {err}", throttle_duration_sec=5.0)
            return None
        try:  # tf2_ros buffers (a ROS install) hold what they were sent: checked here
            return inputs.transform(stamped).matrix()
        except Rejected as err:
            self.gate.reject("tf", err)
            return None

    # --- outputs ----------------------------------------------------------------------
    def _cloud_rows(self, n: int, columns: int) -> tuple[PointCloud2, np.ndarray]:
        """The next fused cloud's message and its rows, written in place by the kernels; the
        buffer of the last one (published: publish() copied it) is reused."""
        msg, rows = conv.cloud_rows(n, columns, reuse=self._last_cloud)
        self._last_cloud = msg
        return msg, rows

    def _publish(self, data: CloudData, rows: np.ndarray, names: list[str], extr, frame,
                 msg: PointCloud2) -> None:
        frame_id = data.frame_id
        target = self.p["target_frame"]
        if target and target != frame_id:
            if extr is None or frame is None or target != frame.info.header.frame_id:
                self._bad_input("target_frame", f"target_frame {target} unknown (only the LiDAR frame "
                                "or the camera frame); publishing in the LiDAR frame")
            else:
                rows[:, :3] = rows[:, :3].astype(np.float64) @ extr[:3, :3].T + extr[:3, 3]
                frame_id = target
        self.fused_pub.publish(conv.rows_to_pointcloud2(rows, names, frame_id=frame_id, stamp=data.stamp,
                                                        is_dense=False, out=msg))
        self.rate.tick(self._clock_latency(data.stamp_s))

    def _publish_depth(self, projector: Projector, proj, stamp, info: CameraInfo, pub, info_pub) -> None:
        """The sparse LiDAR depth (32FC1 m) in a camera, with that camera's info."""
        pub.publish(conv.array_to_image(projector.sparse_depth(proj), "32FC1",
                                        frame_id=info.header.frame_id, stamp=stamp))
        out = CameraInfo()
        out.header.frame_id, out.header.stamp = info.header.frame_id, stamp
        out.height, out.width, out.distortion_model = info.height, info.width, info.distortion_model
        out.d, out.k, out.r, out.p = info.d, info.k, info.r, info.p
        out.binning_x, out.binning_y, out.roi = info.binning_x, info.binning_y, info.roi
        info_pub.publish(out)

    def _publish_overlay(self, ir: np.ndarray, proj, frame: CameraFrame) -> None:
        base = ir if ir.dtype == np.uint8 else np.clip(ir / max(float(np.nanmax(ir)), 1.0) * 255, 0, 255)
        over = np.repeat(np.asarray(base, np.uint8)[:, :, None], 3, axis=2)
        vis = proj.visible
        pix = proj.pix[vis]
        z = proj.depth[vis]
        hue = np.clip(z / max(float(self.p["max_depth"]) * 0.3, 1e-3), 0, 1)
        flat = over.reshape(-1, 3)
        flat[pix, 0] = (255 * (1 - hue)).astype(np.uint8)
        flat[pix, 1] = 64
        flat[pix, 2] = (255 * hue).astype(np.uint8)
        self.overlay_pub.publish(conv.array_to_image(over, "rgb8", frame_id=frame.info.header.frame_id,
                                                     stamp=frame.stamp))

    def _report(self, n: int, in_view: int, occluded: int, m: Match, matched: bool) -> None:
        with self._lock:
            if matched:
                self.counts["fused"] += 1
            counts = dict(self.counts)
            match_rate = self.matcher.match_rate
            last = self.matcher.last_frame_arrival
        silent = last is None or time.monotonic() - last >= self.matcher.silent_after
        level, text = (OK, "fusing") if matched else (
            WARN, "camera silent: clouds go out with NaN camera fields" if silent
            else "no camera frame within slop: camera fields NaN")
        if self.extrinsics is None and self._tf is None:
            level, text = WARN, "no LiDAR -> camera extrinsics yet"
        self.diag.set("fusion", level, text, **{
            "match rate": match_rate, "clouds": counts["clouds"],
            "fused with camera": counts["fused"], "without camera": counts["unmatched"],
            "rejected clouds": counts["rejected"], "dropped points": counts["dropped_points"],
            "dropped clouds (overload)": counts["dropped_overload"] + self.gate.superseded(self._cloud_topic),
            "lost upstream (sequence gaps)": self.gate.missing(self._cloud_topic),
            "motion compensated": counts["deskewed"],
            "points": n, "points in view": in_view, "occluded": occluded,
            "sync wait (ms)": 1000.0 * m.waited,
            "latency": "stamp to publish on this node's clock" if self._latency_known
            else "not measured: stamps are not from this node's clock"})

    _latency_known = False

    def _clock_latency(self, stamp_s: float) -> float | None:
        """Stamp -> publish on the node's ROS clock, only when the stamps come from that clock
        (within 10 s of it): recordings with their original stamps have no such latency."""
        lat = clock_latency(self.get_clock().now().nanoseconds * 1e-9, stamp_s)
        self._latency_known = lat is not None
        return lat

    def _bad_input(self, what: str, reason: str) -> None:
        """An input that passed the boundary but disagrees with its companions at fusion time
        (image size vs camera_info, an unknown target frame): counted as a mismatch, the rest
        of the cloud fused."""
        if what == "fusion":
            self.diag.set("fusion", ERROR, reason)
            self.get_logger().error(reason, throttle_duration_sec=5.0)
            return
        self.gate.reject(what, Rejected(Reason.MISMATCH, reason), used=True)


def _info_from_k(k: np.ndarray, shape: tuple, frame_id: str) -> CameraInfo:
    """A CameraInfo for an image of `shape` from a K alone (no distortion), for a camera whose
    calibration came as a projection matrix."""
    info = CameraInfo(width=int(shape[1]), height=int(shape[0]), distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[float(v) for v in np.asarray(k, float).ravel()], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                      p=[float(v) for v in np.c_[np.asarray(k, float), np.zeros(3)].ravel()])
    info.header.frame_id = frame_id
    return info


def _check_parameters(p: dict) -> None:
    """Start-up checks of the numbers: a bad one is a configuration error, not a silent default."""
    for name in ("slop", "sync_timeout", "camera_silent_after", "min_depth", "max_depth",
                 "occlusion_rel_tol", "occlusion_abs_tol", "depth_scale"):
        v = float(p[name])
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"{name} must be a finite number >= 0; got {p[name]!r}")
    if not float(p["min_depth"]) < float(p["max_depth"]):
        raise ConfigError(f"min_depth ({p['min_depth']}) must be below max_depth ({p['max_depth']})")
    if int(p["splat_px"]) < 0:
        raise ConfigError(f"splat_px must be >= 0; got {p['splat_px']}")
    try:
        history_depth(p["input_qos_depth"], "input_qos_depth")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for name, n in (("odom_lidar_xyz", 3), ("odom_lidar_quat_xyzw", 4), ("extrinsics_xyz", 3),
                    ("extrinsics_quat_xyzw", 4)):
        if len(p[name]) != n:
            raise ConfigError(f"{name} needs {n} numbers; got {len(p[name])} ({list(p[name])})")


def main() -> None:
    raise SystemExit(run_node(LidarFusionNode))


if __name__ == "__main__":
    main()
