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

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_ai_nodes.core import calibration as calib
from depth_ai_nodes.core.motion import deskew, twist_in_frame
from depth_ai_nodes.core.projection import Intrinsics, Projector
from depth_ai_nodes.core.sync import ApproxTimeMatcher, Match
from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.core.pointcloud import PointCloudFormatError
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import tf
from depth_ai_nodes.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from depth_ai_nodes.ros.node_main import ConfigError, run_node
from depth_ai_nodes.ros.params import Param, declare
from depth_ai_nodes.ros.qos import QOS_NAMES, latched_qos, matching_qos, qos_from_name

PARAMETERS: list[Param] = [
    Param("cloud_topic", "/lidar/points", "Input LiDAR PointCloud2 (needs x, y, z; intensity, t used if present)."),
    Param("ir_topic", "/camera/infra1/image_rect_raw", "IR image (mono8/mono16/32FC1)."),
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
    Param("extrinsics_matrix", [0.0], "parameters: 4x4 row-major camera <- LiDAR (16 numbers); "
          "overrides xyz/quat when given."),
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
    Param("publish_overlay", False, "Publish lidar_overlay: the IR image with the visible points."),
    Param("qos", "sensor_data", "QoS of the outputs.", choices=QOS_NAMES),
]

@dataclass
class CameraFrame:
    stamp: Any
    ir: np.ndarray
    info: CameraInfo


class LidarFusionNode(Node):
    def __init__(self) -> None:
        super().__init__("lidar_fusion_node")
        p = declare(self, PARAMETERS)
        self.p = p
        self.diag = Diagnostics(self)
        self.out_qos = qos_from_name(p["qos"])
        self.matcher: ApproxTimeMatcher = ApproxTimeMatcher(
            slop=float(p["slop"]), timeout=float(p["sync_timeout"]),
            silent_after=float(p["camera_silent_after"]),
            frame_offset=float(p["camera_time_offset"]), cloud_offset=float(p["lidar_time_offset"]))
        self.extrinsics: np.ndarray | None = None   # camera <- LiDAR
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
        self._last_reason: dict[str, tuple[str, float]] = {}
        self.odom_lidar = calib.from_xyz_quat(p["odom_lidar_xyz"], p["odom_lidar_quat_xyzw"])
        self.counts = {"clouds": 0, "fused": 0, "unmatched": 0, "rejected": 0, "dropped_points": 0,
                       "deskewed": 0}

        self.fused_pub = self.create_publisher(PointCloud2, "fused/points", self.out_qos)
        self.depth_pub = self.create_publisher(Image, "lidar_depth", self.out_qos)
        self.depth_info_pub = self.create_publisher(CameraInfo, "lidar_depth/camera_info", self.out_qos)
        # the same in the colour camera (when colour is on): the inference node's sparse_topic
        self.depth_color_pub = self.create_publisher(Image, "lidar_depth_color", self.out_qos)
        self.depth_color_info_pub = self.create_publisher(CameraInfo, "lidar_depth_color/camera_info",
                                                          self.out_qos)
        self._color_key: tuple | None = None
        self.overlay_pub = (self.create_publisher(Image, "lidar_overlay", self.out_qos)
                            if p["publish_overlay"] else None)
        self.rate = self.diag.rate("fusion", "fused", 0.0)
        self.diag.set("fusion", WARN, "waiting for clouds")
        self._subs: dict[str, Any] = {}
        self._wanted: dict[str, tuple[type, Any]] = {
            p["cloud_topic"]: (PointCloud2, self._on_cloud),
            p["ir_topic"]: (Image, self._on_ir),
            p["ir_info_topic"]: (CameraInfo, self._on_info)}
        if p["color_topic"]:
            self._wanted[p["color_topic"]] = (Image, self._on_color)
        if p["color_topic"] or p["depth_camera"] == "color":
            self._wanted[p["color_info_topic"]] = (CameraInfo, self._on_color_info)
            self._wanted[p["color_extrinsics_topic"]] = (Extrinsics, self._on_color_extrinsics)
        if p["depth_topic"]:
            self._wanted[p["depth_topic"]] = (Image, self._on_depth)
        if p["odom_topic"]:
            self._wanted[p["odom_topic"]] = (Odometry, self._on_odom)
        if p["twist_topic"]:
            self._wanted[p["twist_topic"]] = (TwistStamped, self._on_twist)
        if p["extrinsics_source"] == "topic":
            self._wanted[p["extrinsics_topic"]] = (Extrinsics, self._on_extrinsics)
        self._tf = self._make_tf() if p["extrinsics_source"] == "tf" else None
        self._subscribe()
        self.create_timer(0.02, self._poll)          # decide clouds whose camera never came

    # --- set-up -----------------------------------------------------------------------
    def _load_static_extrinsics(self, p: dict) -> None:
        try:
            src = p["extrinsics_source"]
            if src == "parameters":
                m = list(p["extrinsics_matrix"])
                self.extrinsics = calib.from_matrix(m) if len(m) in (12, 16) else \
                    calib.from_xyz_quat(p["extrinsics_xyz"], p["extrinsics_quat_xyzw"])
            elif src == "file":
                if not p["calibration_file"]:
                    raise ConfigError("extrinsics_source file needs calibration_file (KITTI calib.txt "
                                      "or our extrinsics YAML)")
                ext, _ = calib.load_calibration_file(p["calibration_file"], int(p["kitti_camera"]))
                self.extrinsics = ext.matrix
        except calib.CalibrationError as err:
            raise ConfigError(str(err)) from err

    def _make_tf(self) -> Any:
        listener = tf.transform_listener(self)
        if listener is None:
            raise ConfigError("extrinsics_source tf needs tf2_ros (a ROS install) or tf2_msgs "
                              "(built by our pip install); use topic, parameters or file")
        return listener

    def _subscribe(self) -> None:
        """Subscribe with QoS matched to the publishers (best effort when none yet: it
        matches reliable and best-effort publishers alike); latched topics transient-local
        so a calibration sent before we started still arrives."""
        for topic, (typ, cb) in self._wanted.items():
            qos = latched_qos() if typ is Extrinsics else \
                matching_qos(self, topic, depth=20 if typ in (Odometry, TwistStamped) else 5)
            self._subs[topic] = self.create_subscription(typ, topic, cb, qos)

    # --- camera side ------------------------------------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        self.info = msg

    def _on_ir(self, msg: Image) -> None:
        try:
            ir = conv.image_to_rgb_array(msg)
        except ValueError as err:
            self._bad_input("ir", str(err))
            return
        if self.info is None:
            return
        self._emit(self.matcher.add_frame(conv.stamp_to_s(msg.header.stamp), CameraFrame(msg.header.stamp, ir, self.info),
                                          time.monotonic()))

    def _on_color(self, msg: Image) -> None:
        try:
            self.colors.append((conv.stamp_to_s(msg.header.stamp), conv.image_to_rgb_array(msg)))
        except ValueError as err:
            self._bad_input("color", str(err))

    def _on_color_info(self, msg: CameraInfo) -> None:
        self.color_info = msg

    def _on_color_extrinsics(self, msg: Extrinsics) -> None:
        self.depth_to_color = _extrinsics_matrix(msg)

    def _on_depth(self, msg: Image) -> None:
        try:
            arr = conv.image_to_rgb_array(msg)
            if arr.dtype == np.uint16:
                arr = arr.astype(np.float32) * np.float32(self.p["depth_scale"])
            self.depths.append((conv.stamp_to_s(msg.header.stamp), arr))
        except ValueError as err:
            self._bad_input("depth", str(err))

    def _on_odom(self, msg: Odometry) -> None:
        tw = msg.twist.twist
        v = np.array([tw.linear.x, tw.linear.y, tw.linear.z])
        w = np.array([tw.angular.x, tw.angular.y, tw.angular.z])
        self.odoms.append((conv.stamp_to_s(msg.header.stamp), v, w, msg.child_frame_id))

    def _on_twist(self, msg: TwistStamped) -> None:
        tw = msg.twist
        self.odoms.append((conv.stamp_to_s(msg.header.stamp), np.array([tw.linear.x, tw.linear.y, tw.linear.z]),
                           np.array([tw.angular.x, tw.angular.y, tw.angular.z]), msg.header.frame_id))

    def _on_extrinsics(self, msg: Extrinsics) -> None:
        self.extrinsics = _extrinsics_matrix(msg)
        self.get_logger().info(f"extrinsics {msg.header.frame_id} -> {msg.child_frame_id} received")

    # --- LiDAR side -------------------------------------------------------------------
    def _on_cloud(self, msg: PointCloud2) -> None:
        self.counts["clouds"] += 1
        try:
            have = {f.name for f in msg.fields}
            missing = [k for k in ("x", "y", "z") if k not in have]
            if missing:
                raise PointCloudFormatError(f"missing field(s) {', '.join(missing)} "
                                            f"(has: {', '.join(sorted(have)) or 'none'})")
            cols = conv.pointcloud2_to_fields(msg, ["x", "y", "z", *[k for k in ("intensity", "t") if k in have]])
            if "t" in cols and cols["t"].dtype.kind in "iu":  # Ouster/Livox drivers: t in ns
                cols["t"] = cols["t"].astype(np.float64) * 1e-9
            for k in ("x", "y", "z"):
                if cols[k].dtype != np.float32:
                    cols[k] = cols[k].astype(np.float32)
            finite = np.isfinite(cols["x"]) & np.isfinite(cols["y"]) & np.isfinite(cols["z"])
            bad = int(finite.size - np.count_nonzero(finite))
            if bad:
                if bad == finite.size:
                    raise PointCloudFormatError(f"all {bad} points have NaN/inf coordinates")
                self.counts["dropped_points"] += bad
                self.get_logger().warn(f"{bad} of {finite.size} points with NaN/inf coordinates dropped",
                                       throttle_duration_sec=5.0)
                cols = {k: np.ascontiguousarray(v[finite]) for k, v in cols.items()}
        except PointCloudFormatError as err:
            self.counts["rejected"] += 1
            self._bad_input("cloud", f"PointCloud2 rejected: {err}")
            return
        ref = conv.stamp_to_s(msg.header.stamp)
        if self.p["sync_reference"] == "mid_scan" and "t" in cols and cols["t"].size:
            ref += 0.5 * float(np.nanmax(cols["t"]))
        self._emit(self.matcher.add_cloud(ref, (msg, cols), time.monotonic()))

    def _poll(self) -> None:
        self._emit(self.matcher.poll(time.monotonic()))

    def _emit(self, matches: list[Match]) -> None:
        """Fuse decided clouds; a cloud matched to a camera frame first waits (within
        sync_timeout) for the odometry at its mid-scan time, which de-skewing needs: the
        twist of a few scans ago is off by pixels on a turning robot."""
        now = time.monotonic()
        ready, waiting = [], []
        for m, deadline in [*self._await_odom, *((m, now + float(self.p["sync_timeout"])) for m in matches)]:
            (waiting if self._needs_odom(m) and now < deadline else ready).append((m, deadline))
        self._await_odom = waiting
        for m, _ in ready:
            try:
                self._fuse(m)
            except Exception as err:  # never let one bad cloud stop the node
                self._bad_input("fusion", f"fusion failed: {err}")

    def _needs_odom(self, m: Match) -> bool:
        if m.frame is None or not (self.p["odom_topic"] or self.p["twist_topic"]) or not self.odoms:
            return False  # no odometry at all: fuse without compensation, do not wait
        msg, cols = m.cloud
        if "t" not in cols or not cols["t"].size:
            return False
        t_mid = conv.stamp_to_s(msg.header.stamp) + float(self.p["lidar_time_offset"]) + 0.5 * float(np.nanmax(cols["t"]))
        return self.odoms[-1][0] < t_mid - 1e-3

    def _fuse(self, m: Match) -> None:
        msg, cols = m.cloud
        n = cols["x"].shape[0]
        inten = cols.get("intensity")
        inten = inten.astype(np.float32) if inten is not None else np.full(n, np.nan, np.float32)
        frame: CameraFrame | None = m.frame
        extr = self.extrinsics if self._tf is None else self._tf_extrinsics(msg, frame)
        names = ["x", "y", "z", "intensity", "ir"]
        color = self._nearest(self.colors, m.frame_time) if frame is not None else None
        ref = self._nearest(self.depths, m.frame_time) if frame is not None else None
        use_rgb, use_ref = bool(self.p["color_topic"]), bool(self.p["depth_topic"])
        if frame is None or extr is None:
            if frame is not None and extr is None:
                self.get_logger().warn("no LiDAR -> camera extrinsics yet (extrinsics_source "
                                       f"{self.p['extrinsics_source']}): camera fields NaN",
                                       throttle_duration_sec=5.0)
            self.counts["unmatched"] += 1
            rows = np.full((n, 5 + use_rgb + use_ref), np.nan, np.float32)
            rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = cols["x"], cols["y"], cols["z"], inten
            self._publish(msg, rows, names + (["rgb"] if use_rgb else []) +
                          (["depth_diff"] if use_ref else []), extr, None)
            self._report(n, 0, 0, m, matched=False)
            return
        projector = self._projector(frame.info)
        proj_xyz = self._deskewed(msg, cols, m.frame_time)
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
        rows, proj = projector.fuse(cols["x"], cols["y"], cols["z"], inten, extr, ir,
                                    ref_depth=ref_ir, proj_xyz=proj_xyz)
        if use_ref and ref_ir is None:  # keep the layout stable: the field is there, NaN
            rows = np.concatenate([rows, np.full((n, 1), np.nan, np.float32)], axis=1)
        cproj = self._color_projection(cols, proj_xyz, extr) if (use_rgb or in_color) else None
        if use_rgb:
            rgb_col = np.full(n, np.nan, np.float32)
            if cproj is not None and color is not None and color.shape[:2] == (
                    self.color_projector.intr.height, self.color_projector.intr.width):
                rgb_col = self.color_projector.sample_rgb(color, cproj)
            rows = np.concatenate([rows[:, :5], rgb_col[:, None], rows[:, 5:]], axis=1)
            names.append("rgb")
        if use_ref:
            names.append("depth_diff")
            if in_color and cproj is not None and ref is not None:
                if ref.shape[:2] == (self.color_projector.intr.height, self.color_projector.intr.width):
                    cam = self.color_projector.sample(ref, cproj)
                    rows[:, -1] = np.where(cam > 0, cam - cproj.depth, np.nan)
                else:
                    self._bad_input("depth", "depth image size differs from the colour camera_info")
        if cproj is not None:
            self._publish_depth(self.color_projector, cproj, frame.stamp, self.color_info,
                                self.depth_color_pub, self.depth_color_info_pub)
        self._publish(msg, rows, names, extr, frame)
        self._publish_depth(projector, proj, frame.stamp, frame.info, self.depth_pub, self.depth_info_pub)
        if self.overlay_pub is not None and ir is not None:
            self._publish_overlay(ir, proj, frame)
        self._report(n, proj.in_view, proj.occluded, m, matched=True)

    def _projector(self, info: CameraInfo) -> Projector:
        key = (info.width, info.height, tuple(info.k), tuple(info.d), info.distortion_model)
        if key != self._proj_key:
            intr = Intrinsics.from_camera_model(conv.camera_info_to_model(info))
            p = self.p
            self.projector = Projector(intr, p["min_depth"], p["max_depth"], int(p["splat_px"]),
                                       p["occlusion_rel_tol"], p["occlusion_abs_tol"])
            self._proj_key = key
        return self.projector

    def _deskewed(self, msg: PointCloud2, cols: dict, frame_time: float | None):
        """Points moved to the camera's time with the odometry twist (projection only)."""
        if frame_time is None or not self.odoms or "t" not in cols:
            return None
        cloud_t = conv.stamp_to_s(msg.header.stamp) + float(self.p["lidar_time_offset"])
        t_mid = cloud_t + 0.5 * float(np.nanmax(cols["t"]))
        _, v, w, child = min(self.odoms, key=lambda o: abs(o[0] - t_mid))
        if child and child != msg.header.frame_id:
            v, w = twist_in_frame(v, w, self.odom_lidar)
        return deskew(cols["x"], cols["y"], cols["z"], cols["t"], frame_time - cloud_t, v, w)

    def _color_projection(self, cols, proj_xyz, extr):
        """The cloud in the colour camera (IR/depth -> colour extrinsics from the camera node),
        or None until its camera_info and extrinsics have arrived."""
        info = self.color_info
        if info is None or self.depth_to_color is None:
            self.get_logger().warn("no colour camera_info / depth_to_color extrinsics yet: rgb and "
                                   "colour-geometry fields NaN", throttle_duration_sec=10.0)
            return None
        key = (info.width, info.height, tuple(info.k), tuple(info.d))
        if self.color_projector is None or self._color_key != key:
            intr = Intrinsics.from_camera_model(conv.camera_info_to_model(info))
            p = self.p
            self.color_projector = Projector(intr, p["min_depth"], p["max_depth"], int(p["splat_px"]),
                                             p["occlusion_rel_tol"], p["occlusion_abs_tol"])
            self._color_key = key
        x, y, z = proj_xyz if proj_xyz is not None else (cols["x"], cols["y"], cols["z"])
        return self.color_projector.project_visible(x, y, z, self.depth_to_color @ extr)

    @staticmethod
    def _nearest(buf: deque, t: float | None) -> np.ndarray | None:
        if t is None or not buf:
            return None
        st, arr = min(buf, key=lambda e: abs(e[0] - t))
        return arr if abs(st - t) <= 0.5 else None

    def _tf_extrinsics(self, msg: PointCloud2, frame: CameraFrame | None) -> np.ndarray | None:
        if frame is None:
            return None
        try:
            stamped = self._tf.lookup_transform(frame.info.header.frame_id, msg.header.frame_id, msg.header.stamp)
        except Exception as err:  # tf2 exceptions: no transform yet
            self.get_logger().warn(f"no TF {msg.header.frame_id} -> camera: {err}", throttle_duration_sec=5.0)
            return None
        t, r = stamped.transform.translation, stamped.transform.rotation
        return calib.from_xyz_quat([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])

    # --- outputs ----------------------------------------------------------------------
    def _publish(self, msg: PointCloud2, rows: np.ndarray, names: list[str], extr, frame) -> None:
        frame_id = msg.header.frame_id
        target = self.p["target_frame"]
        if target and target != frame_id:
            if extr is None or frame is None or target != frame.info.header.frame_id:
                self._bad_input("target_frame", f"target_frame {target} unknown (only the LiDAR frame "
                                "or the camera frame); publishing in the LiDAR frame")
            else:
                xyz = rows[:, :3].astype(np.float64) @ extr[:3, :3].T + extr[:3, 3]
                rows = rows.copy()
                rows[:, :3] = xyz
                frame_id = target
        self.fused_pub.publish(conv.rows_to_pointcloud2(rows, names, frame_id=frame_id,
                                                        stamp=msg.header.stamp, is_dense=False))
        self.rate.tick(time.time() - conv.stamp_to_s(msg.header.stamp))

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
        if matched:
            self.counts["fused"] += 1
        last = self.matcher.last_frame_arrival
        silent = last is None or time.monotonic() - last >= self.matcher.silent_after
        level, text = (OK, "fusing") if matched else (
            WARN, "camera silent: clouds go out with NaN camera fields" if silent
            else "no camera frame within slop: camera fields NaN")
        if self.extrinsics is None and self._tf is None:
            level, text = WARN, "no LiDAR -> camera extrinsics yet"
        self.diag.set("fusion", level, text, **{
            "match rate": self.matcher.match_rate, "clouds": self.counts["clouds"],
            "fused with camera": self.counts["fused"], "without camera": self.counts["unmatched"],
            "rejected clouds": self.counts["rejected"], "dropped points": self.counts["dropped_points"],
            "motion compensated": self.counts["deskewed"],
            "points": n, "points in view": in_view, "occluded": occluded,
            "sync wait (ms)": 1000.0 * m.waited})

    def _bad_input(self, what: str, reason: str) -> None:
        """Log each new reason at once, a repeated one at most every 5 s; diagnostics always."""
        now = time.monotonic()
        last = self._last_reason.get(what)
        if last is None or last[0] != reason or now - last[1] > 5.0:
            self.get_logger().error(reason)
            self._last_reason[what] = (reason, now)
        self.diag.set(f"input {what}", ERROR, reason)


def _extrinsics_matrix(msg: Extrinsics) -> np.ndarray:
    """depth_ai_nodes/Extrinsics (p_child = R p_frame + t) -> 4x4 child <- frame."""
    return conv.msg_to_transform(msg).matrix()


def main() -> None:
    raise SystemExit(run_node(LidarFusionNode))


if __name__ == "__main__":
    main()
