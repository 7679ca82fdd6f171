"""lidar_node: a LiDAR source as sensor_msgs/PointCloud2 (x, y, z, intensity, t, ring).

Thin shell over depth_ai_nodes/lidar/ (the sources) and ros/conversions.py (messages).
Topics (node `lidar`, so a plain start gives /lidar/...): ~/points; for the built-in scene also
~/extrinsics/lidar_to_camera (depth_ai_nodes/Extrinsics, latched: the calibration the
fusion node reads by topic) and odom (nav_msgs/Odometry of lidar_link, for motion
compensation) as ~/odom; for Ouster captures ~/near_ir/image (mono16) + near_ir/camera_info;
with compressed_points.enable also ~/points/zstd or ~/points/zlib (point_cloud_transport's form).
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import rclpy
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_ai_nodes.core import cloud_compression
from depth_ai_nodes.core.calibration import as_rigid, matrix_to_quat
from depth_ai_nodes.lidar import SourceError, open_source
from depth_ai_nodes.msg import Extrinsics
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import tf
from depth_ai_nodes.ros.diagnostics import ERROR, OK, Diagnostics
from depth_ai_nodes.ros.node_main import ConfigError, run_node
from depth_ai_nodes.ros.params import Param, declare
from depth_ai_nodes.ros.qos import QOS_DEPTH_HELP, QOS_NAMES, latched_qos, output_qos

NODE_NAME = "lidar"  # like camera_node ("camera"): a plain start gives /lidar/points

PARAMETERS: list[Param] = [
    Param("source", "synthetic", "Where scans come from.", choices=("synthetic", "kitti", "ouster", "files")),
    Param("frame_id", "", "Frame of the points; empty: the source's (lidar_link, velodyne, os_sensor)."),
    Param("rate_hz", 10.0, "Scans per second (ouster: 0 = the capture's rate).", "Hz"),
    Param("beams", 32, "synthetic: number of beams (rings).", "beams"),
    Param("columns", 1024, "synthetic: columns (firings) per revolution.", "columns"),
    Param("max_range", 50.0, "synthetic: maximum range.", "m"),
    Param("range_noise", 0.0, "synthetic: Gaussian range noise (sigma).", "m"),
    Param("seed", 0, "synthetic: world seed (must equal the camera_node's seed for one world)."),
    Param("scene_time_origin", 0.0, "synthetic: scene time = stamp - origin (the camera must agree).", "s"),
    Param("camera_frame", "camera_infra1_optical_frame",
          "synthetic, kitti: camera frame the published extrinsics map LiDAR points into."),
    Param("odom_frame", "odom", "synthetic: frame_id of the odometry (the world)."),
    Param("publish_tf", True, "synthetic: also send the LiDAR's mounting on /tf_static (camera_frame "
          "-> frame_id), so rviz2 shows LiDAR and camera data in one fixed frame; turn it off when a "
          "robot description publishes the LiDAR frame."),
    Param("kitti_path", "", "kitti: folder with velodyne/*.bin (and calib/*.txt, whose "
          "P<kitti_camera> @ R0_rect @ Tr_velo_to_cam is published as the extrinsics into camera_frame)."),
    Param("kitti_camera", 2, "kitti: the camera P<n> of calib.txt the extrinsics map into (2: left colour)."),
    Param("points_path", "", "files: a folder or glob of .bin (float32 records, bin_fields) and .pcd "
          "(ascii, binary, binary_compressed) point files, played in name order."),
    Param("bin_fields", "x,y,z,intensity", "files: the float32 fields of each .bin record in order "
          "(nuScenes: x,y,z,intensity,ring; _ skips one)."),
    Param("ouster_pcap", "", "ouster: capture .pcap file."),
    Param("ouster_metadata", "", "ouster: metadata .json (empty: next to the pcap)."),
    Param("loop", True, "kitti/ouster/files: start again at the end."),
    Param("qos", "sensor_data", "QoS of points, odometry and NEAR_IR.", choices=QOS_NAMES),
    Param("qos_depth", 0, QOS_DEPTH_HELP),
    Param("compressed_points.enable", False, "Also publish ~/points/<format> "
          "(point_cloud_interfaces/CompressedPointCloud2 as point_cloud_transport's zstd or zlib plugin "
          "writes it), compressed only while it has subscribers: for a slow or lossy link (a 128x2048 "
          "scan: 6.3 MB raw; as zstd 2.1 MB for the built-in scene, real scans 1.35-1.65x smaller)."),
    Param("compressed_points.format", "zstd", "Codec of ~/points/<format> (both lossless).",
          choices=cloud_compression.FORMATS),
    Param("compressed_points.level", 1, "Compression level: zstd -7..22 (1: ~15 ms for 6.3 MB on "
          "one core), zlib -1..9."),
    Param("compressed_points.resolution", 0.0, "0: lossless. Otherwise x, y, z of the compressed scans "
          "are rounded to the largest power-of-two step not above this (error within half of it): "
          "0.001 makes real scans ~1.75x smaller instead of ~1.4x, far below a LiDAR's noise.", "m"),
]


class LidarNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        p = declare(self, PARAMETERS)
        self.p = p
        self.diag = Diagnostics(self)
        try:
            self.source = self._open(p)
        except SourceError as err:
            raise ConfigError(str(err)) from err
        self.frame_id = p["frame_id"] or self.source.frame_id
        try:
            qos = output_qos(p["qos"], p["qos_depth"])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.pub = self.create_publisher(PointCloud2, "~/points", qos)
        self.compressed_pub = self._compressed_publisher(p, qos)
        self.odom_pub = self.extr_pub = self.nir_pub = self.nir_info_pub = self._tf = None
        if getattr(self.source, "camera_from_lidar", None) is not None:
            self.extr_pub = self.create_publisher(Extrinsics, "~/extrinsics/lidar_to_camera", latched_qos())
            self.extr_pub.publish(self._extrinsics())
            if p["publish_tf"]:
                self._tf = tf.static_broadcaster(self)
            if self._tf is not None:
                self._tf.sendTransform(conv.transform_to_tf(
                    as_rigid(self.source.camera_from_lidar), p["camera_frame"], self.frame_id,
                    self.get_clock().now().to_msg()))
        if hasattr(self.source, "odometry"):
            self.odom_pub = self.create_publisher(Odometry, "~/odom", qos)
        if p["source"] == "ouster":
            self.nir_pub = self.create_publisher(Image, "~/near_ir/image", qos)
            self.nir_info_pub = self.create_publisher(CameraInfo, "~/near_ir/camera_info", qos)
        self.rate = self.diag.rate("scans", "points", float(self.source.rate_hz))
        self.diag.set("scans", OK, f"source {p['source']}", frame_id=self.frame_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lidar_capture", daemon=True)
        self._thread.start()

    def _compressed_publisher(self, p: dict, qos) -> Any | None:
        """~/points/<format> (point_cloud_transport's topic name), when enabled."""
        if not p["compressed_points.enable"]:
            return None
        fmt, level = p["compressed_points.format"], int(p["compressed_points.level"])
        if not 0.0 <= float(p["compressed_points.resolution"]) <= 1.0:
            raise ConfigError(f"compressed_points.resolution {p['compressed_points.resolution']} m: use 0 "
                              f"(lossless) or a step up to 1 m (e.g. 0.001)")
        try:
            cloud_compression.check_level(fmt, level)
            cloud_compression.require(fmt)
            msg_type = conv.compressed_point_cloud2_type()
        except (ValueError, ImportError) as err:
            raise ConfigError(f"compressed_points: {err}") from err
        return self.create_publisher(msg_type, f"~/points/{fmt}", qos)

    def _open(self, p: dict):
        kind = p["source"]
        if kind == "synthetic":
            return open_source("synthetic", beams=int(p["beams"]), columns=int(p["columns"]),
                               rate_hz=float(p["rate_hz"]), seed=int(p["seed"]),
                               max_range=float(p["max_range"]), range_noise_m=float(p["range_noise"]),
                               scene_time_origin=float(p["scene_time_origin"]))
        if kind == "kitti":
            if not p["kitti_path"]:
                raise SourceError("source kitti needs kitti_path (a folder with velodyne/*.bin)")
            return open_source("kitti", path=p["kitti_path"], rate_hz=float(p["rate_hz"]), loop=bool(p["loop"]),
                               camera=int(p["kitti_camera"]))
        if kind == "files":
            if not p["points_path"]:
                raise SourceError("source files needs points_path (a folder or glob of .bin / .pcd files)")
            return open_source("files", path=p["points_path"], bin_fields=p["bin_fields"],
                               rate_hz=float(p["rate_hz"]), loop=bool(p["loop"]))
        if not p["ouster_pcap"]:
            raise SourceError("source ouster needs ouster_pcap (and ouster_metadata, the sensor JSON)")
        return open_source("ouster", pcap=p["ouster_pcap"], metadata=p["ouster_metadata"],
                           rate_hz=float(p["rate_hz"]), loop=bool(p["loop"]))

    def _extrinsics(self) -> Extrinsics:
        """lidar_link -> camera optical frame (msg/Extrinsics: p_camera = R p_lidar + t)."""
        return conv.extrinsics_to_msg(as_rigid(self.source.camera_from_lidar), self.frame_id,
                                      self.p["camera_frame"], self.get_clock().now().to_msg())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                scan = self.source.read(timeout=0.2)
                if scan is None:
                    continue
                if self._stop.is_set() or not rclpy.ok():  # shutting down: SIGINT got here first
                    break
                self._publish(scan)
            except Exception as err:  # a bad scan: log, report, keep running
                if not rclpy.ok():
                    break
                self.get_logger().error(f"cannot publish scan: {err}", throttle_duration_sec=5.0)
                self.diag.set("scans", ERROR, f"publish failed: {err}")

    def _publish(self, scan) -> None:
        stamp = conv.ns_to_stamp(scan.stamp_ns)
        # t before ring and a 24-byte point keep every float 4-byte aligned (fast zero-copy reads)
        cols = {k: scan.points[k] for k in ("x", "y", "z", "intensity", "t", "ring")}
        if self.odom_pub is not None:  # first, so a fusion node has it when the cloud arrives
            self.odom_pub.publish(self._odometry(scan.stamp_ns))
        # each form is packed and sent only while something subscribes to it (a robot whose
        # server takes the compressed scan spends no CPU on the raw one)
        raw_wanted = self.pub.get_subscription_count() > 0
        packed_wanted = self.compressed_pub is not None and self.compressed_pub.get_subscription_count() > 0
        if raw_wanted or packed_wanted:
            msg = conv.fields_to_pointcloud2(cols, frame_id=self.frame_id, stamp=stamp, point_step=24)
            if raw_wanted:
                self.pub.publish(msg)
            if packed_wanted:
                self.compressed_pub.publish(conv.compress_pointcloud2(
                    msg, self.p["compressed_points.format"], int(self.p["compressed_points.level"]),
                    float(self.p["compressed_points.resolution"])))
        self.rate.tick(time.time() - scan.stamp_ns * 1e-9)
        self.diag.update("scans", points=len(scan))
        if self.nir_pub is not None and scan.near_ir is not None:
            img, info = _near_ir_msgs(scan.near_ir, self.frame_id, stamp)
            self.nir_pub.publish(img)
            self.nir_info_pub.publish(info)

    def _odometry(self, stamp_ns: int) -> Odometry:
        """Pose and twist of lidar_link at the scan's mid time (the twist fusion de-skews with)."""
        t_ns = stamp_ns + int(0.5e9 / self.source.rate_hz)
        pose, v, w = self.source.odometry(t_ns)
        msg = Odometry()
        msg.header.stamp = conv.ns_to_stamp(t_ns)
        msg.header.frame_id = self.p["odom_frame"]
        msg.child_frame_id = self.frame_id
        xyz, q = matrix_to_quat(pose)
        pp = msg.pose.pose
        pp.position.x, pp.position.y, pp.position.z = (float(a) for a in xyz)
        pp.orientation.x, pp.orientation.y, pp.orientation.z, pp.orientation.w = (float(a) for a in q)
        tw = msg.twist.twist
        tw.linear.x, tw.linear.y, tw.linear.z = (float(a) for a in v)
        tw.angular.x, tw.angular.y, tw.angular.z = (float(a) for a in w)
        return msg

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.source.close()


def _near_ir_msgs(nir: np.ndarray, frame_id: str, stamp) -> tuple[Image, CameraInfo]:
    """NEAR_IR as mono16 plus a CameraInfo that only carries the size: the image is a
    range image (azimuth x beam), not a pinhole camera, so K/P stay zero (calibration
    consumers must not treat it as one)."""
    img = conv.array_to_image(np.ascontiguousarray(nir, dtype=np.uint16), "mono16", frame_id=frame_id, stamp=stamp)
    info = CameraInfo()
    info.header = img.header
    info.height, info.width = img.height, img.width
    return img, info


def main() -> None:
    raise SystemExit(run_node(LidarNode))


if __name__ == "__main__":
    main()
