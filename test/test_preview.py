"""`depth-ai preview`: PNGs from live topics and from a bag.

Live: a publisher process offers a depth image and a sparse LiDAR depth image
latched (reliable + transient local, published once before the preview
starts) and an IR image best effort, repeatedly. The preview only gets the
latched ones if its subscriptions match the publisher's durability, and the IR
only if they accept best effort: both must come out as PNGs, colourised as
documented (valid depth coloured, invalid black; LiDAR points over IR).
Bag: the golden input bag of the built-in scene gives color, IR and depth PNGs.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from PIL import Image as PILImage

import golden_replay as gr
from harness import NodeProcess, executable

pytestmark = pytest.mark.ros

PUBLISHER = r"""
import time, numpy as np, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, DurabilityPolicy
from depth_ai_nodes.ros.conversions import array_to_image
rclpy.init()
node = rclpy.create_node("preview_test_publisher")
latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
best_effort = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
depth = np.zeros((48, 64), np.uint16); depth[:, 32:] = 1500          # left half invalid
sparse = np.full((48, 64), np.nan, np.float32); sparse[24, 10] = 2.0  # one LiDAR point
ir = np.full((48, 64), 100, np.uint8)
node.create_publisher(type(array_to_image(depth, "16UC1")), "/pv/depth", latched).publish(
    array_to_image(depth, "16UC1", frame_id="camera_depth_optical_frame"))
node.create_publisher(type(array_to_image(depth, "16UC1")), "/pv/lidar_depth", latched).publish(
    array_to_image(sparse, "32FC1", frame_id="camera_infra1_optical_frame"))
pub = node.create_publisher(type(array_to_image(ir, "mono8")), "/pv/infra1", best_effort)
print("published", flush=True)
while rclpy.ok():
    pub.publish(array_to_image(ir, "mono8", frame_id="camera_infra1_optical_frame"))
    time.sleep(0.1)
"""


def test_preview_of_live_topics_matches_latched_and_best_effort_publishers(tmp_path):
    out = tmp_path / "pics"
    with NodeProcess([sys.executable, "-c", PUBLISHER]) as pub:
        deadline = time.monotonic() + 30.0
        while "published" not in pub.output() and time.monotonic() < deadline:
            assert pub.alive(), pub.output()
            time.sleep(0.1)
        assert "published" in pub.output(), pub.output()
        with NodeProcess([executable("depth-ai"), "preview", "--topics", "/pv/depth",
                          "/pv/lidar_depth", "/pv/infra1", "--timeout", "30",
                          "--out", str(out)]) as preview:
            assert preview.wait(60) == 0, preview.output()
    depth = np.asarray(PILImage.open(out / "pv_depth.png"))
    assert depth.shape == (48, 64, 3)
    assert (depth[:, :32] == 0).all(), "invalid depth must be black"
    assert (depth[:, 32:].sum(axis=2) > 0).all(), "valid depth must be coloured"
    ir = np.asarray(PILImage.open(out / "pv_infra1.png"))
    assert (ir == 100).all()
    overlay = np.asarray(PILImage.open(out / "pv_lidar_depth_over_ir.png"))
    changed = np.argwhere((overlay != 100).any(axis=2))
    assert len(changed) == 9 and {tuple(p) for p in changed} == {
        (v, u) for v in (23, 24, 25) for u in (9, 10, 11)}, "one LiDAR point drawn 3x3 at (10, 24)"
    assert (out / "preview.png").is_file()


def test_preview_from_a_bag(tmp_path):
    bag = tmp_path / "scene"
    gr.make_input_bag(bag)
    out = tmp_path / "pics"
    with NodeProcess([executable("depth-ai"), "preview", "--bag", str(bag), "--at", "0.3",
                      "--out", str(out)]) as preview:
        assert preview.wait(60) == 0, preview.output()
    names = {p.name for p in out.glob("*.png")}
    assert {"camera_color_image_raw.png", "camera_infra1_image_rect_raw.png",
            "camera_aligned_depth_to_color_image_raw.png", "preview.png"} <= names, names
    color = np.asarray(PILImage.open(out / "camera_color_image_raw.png"))
    assert color.shape == (gr.H, gr.W, 3) and color.std() > 5


def test_lidar_depth_reprojected_into_another_camera():
    """A point 2 m ahead of camera A seen by camera B 0.1 m to its right (no rotation)
    lands where B's pinhole model puts it; nearest point wins on a shared pixel."""
    from depth_ai_nodes.core.camera_model import CameraModel
    from depth_ai_nodes.core.transforms import RigidTransform
    from depth_ai_nodes.tools.preview import reproject_sparse

    k = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    a = CameraModel(width=64, height=48, K=k, D=np.zeros(5), distortion_model="plumb_bob")
    b = CameraModel(width=64, height=48, K=k, D=np.zeros(5), distortion_model="plumb_bob")
    sparse = np.full((48, 64), np.nan, np.float32)
    sparse[24, 32] = 2.0          # on A's axis
    sparse[24, 34] = 5.0          # x = 0.1 m: straight ahead of B ...
    sparse[24, 37] = 2.0          # ... and so is this nearer one (x = 0.1 m): it wins
    b_from_a = RigidTransform(np.eye(3), np.array([-0.1, 0.0, 0.0]))  # B is +0.1 m in x
    out = reproject_sparse(sparse, a, b, b_from_a)
    assert out[24, 27] == pytest.approx(2.0)      # 32 + 100 * (-0.1 / 2) = 27
    assert np.count_nonzero(np.isfinite(out)) == 2
    assert out[24, 32] == pytest.approx(2.0)
