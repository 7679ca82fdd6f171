"""camera_node source:=images: your own files in, no publisher to write (issue #13).

On the real frames in ../shared/data: a TUM RGB-D frame (16-bit PNG depth at 1/5000 m)
through camera_node and depth_inference_node (published depth = the file's, metric output
agrees with it where it measured); KITTI image_2 with its calib.txt through camera_node,
lidar_node and colour-only fusion (fused rgb = the image at P2 @ R0_rect @ Tr @ X);
rgbd-train frames with a camera_info YAML, a list file and a timestamps file (ROS-free).
"""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image as PILImage
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.sources.base import SourceError
from depth_ai_nodes.sources.images import ImageFolderSource, ImageSettings, pairing_key
from harness import NodeProcess, collect, projected_pixels, spin_until

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_names_pair_without_their_role_words():
    from pathlib import Path

    assert pairing_key(Path("000001_color.jpg")) == pairing_key(Path("000001_depth.png")) == "000001"
    assert pairing_key(Path("TUM_color.png")) == pairing_key(Path("TUM_depth.png")) == "TUM"
    assert pairing_key(Path("image_2/000000.png")) == "000000"
    assert pairing_key(Path("frame-ir.png")) == "frame"


@pytest.mark.data
def test_rgbd_train_frames_with_a_camera_info_yaml_list_file_and_timestamps(tmp_path, shared_data):
    folder = shared_data / "rgbd-train" / "sun3d_office"
    names = sorted(folder.glob("*_color.jpg"))[:3]
    (tmp_path / "list.txt").write_text("".join(f"{c} {str(c).replace('_color.jpg', '_depth.png')}\n" for c in names))
    (tmp_path / "times.txt").write_text("# time name\n1305031102.175304 a\n1305031102.211214 b\n"
                                        "1305031102.243211 c\n")
    (tmp_path / "cam.yaml").write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: xtion\n"
        "camera_matrix: {rows: 3, cols: 3, data: [570.342, 0, 320, 0, 570.342, 240, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\ndistortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n")
    src = ImageFolderSource(ImageSettings(color="", list_file=str(tmp_path / "list.txt"),
                                          camera_info=str(tmp_path / "cam.yaml"),
                                          timestamps=str(tmp_path / "times.txt"), loop=False, real_time=False))
    src.start()
    got = [src.read(1.0) for _ in range(3)]
    assert src.read(0.1) is None and src.state == "ended"
    assert [fs.stamp_ns for fs in got] == [1305031102175304000, 1305031102211214000, 1305031102243211000]
    assert got[0].color_model.K[0, 0] == pytest.approx(570.342)
    mm = np.asarray(PILImage.open(str(names[1]).replace("_color.jpg", "_depth.png")))
    np.testing.assert_array_equal(got[1].depth, mm)  # 16-bit PNG in mm, published as is
    np.testing.assert_array_equal(got[1].color, np.asarray(PILImage.open(names[1]).convert("RGB")))
    with pytest.raises(SourceError, match="no calibration"):
        ImageFolderSource(ImageSettings(color=str(folder / "*_color.jpg")))
    (tmp_path / "small.yaml").write_text((tmp_path / "cam.yaml").read_text().replace("640", "320")
                                         .replace("image_height: 480", "image_height: 240"))
    with pytest.raises(SourceError, match="calibration is for 320x240, the images are 640x480"):
        ImageFolderSource(ImageSettings(color=str(folder / "*_color.jpg"), camera_info=str(tmp_path / "small.yaml")))
    with pytest.raises(SourceError, match="cannot read camera_info YAML"):
        ImageFolderSource(ImageSettings(color=str(folder / "*_color.jpg"), camera_info=str(tmp_path / "nope.yaml")))


@pytest.mark.data
@pytest.mark.ros
def test_tum_frame_through_camera_and_inference_nodes(ros_node, shared_data):
    rgbd = shared_data / "rgbd"
    depth_m = np.asarray(PILImage.open(rgbd / "TUM_depth.png")).astype(np.float64) / 5000.0
    color = np.asarray(PILImage.open(rgbd / "TUM_color.png").convert("RGB"))
    cam = {"source": "images", "images.color": str(rgbd / "TUM_color.png"),
           "images.depth": str(rgbd / "TUM_depth.png"), "images.depth_scale": 0.0002,
           "images.intrinsics": "[525.0,525.0,319.5,239.5]", "images.fps": 5.0, "qos": "reliable"}
    with NodeProcess.node("camera_node", cam) as camera, \
            NodeProcess.node("depth_inference_node", {"input_qos": "reliable", "qos": "reliable"}) as inference:
        got = collect(ros_node, {"/camera/depth/image_rect_raw": Image, "/camera/color/image_raw": Image,
                                 "/camera/color/camera_info": CameraInfo, "/depth_inference/depth": Image},
                      1, 60.0, qos=RELIABLE)
        assert all(got.values()), (camera.output()[-2000:], inference.output()[-2000:])
        assert camera.stop() == 0 and inference.stop() == 0
    d = got["/camera/depth/image_rect_raw"][0][1]
    mm = np.frombuffer(d.data, np.uint16).reshape(d.height, d.width)
    np.testing.assert_array_equal(mm, np.clip(np.rint(depth_m * 1000.0), 0, 65535).astype(np.uint16))
    c = got["/camera/color/image_raw"][0][1]
    np.testing.assert_array_equal(np.frombuffer(c.data, np.uint8).reshape(c.height, c.width, 3), color)
    info = got["/camera/color/camera_info"][0][1]
    assert list(info.k) == [525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0]
    out = got["/depth_inference/depth"][0][1]
    metric = np.frombuffer(out.data, np.float32).reshape(out.height, out.width)
    valid = (mm > 0) & np.isfinite(metric)
    rel = np.abs(metric[valid] - mm[valid] / 1000.0) / (mm[valid] / 1000.0)
    assert valid.mean() > 0.5 and np.median(rel) < 0.02  # metric, and the sensor's where it measured
    assert np.isfinite(metric[mm == 0]).mean() > 0.9     # the holes filled


@pytest.mark.data
@pytest.mark.ros
def test_kitti_image_and_scans_fused_with_no_publisher_written(ros_node, shared_data):
    """camera_node (KITTI image_2 + calib.txt P2), lidar_node (the scans; extrinsics from the
    same calib.txt), lidar_fusion_node colour-only: every clearly visible point's rgb is the
    image at P2 @ R0_rect @ Tr_velo_to_cam @ X."""
    from depth_ai_nodes.core.calibration import parse_kitti_calib
    from depth_ai_nodes.core.pointcloud import unpack_rgb

    kitti = shared_data / "kitti"
    calib = parse_kitti_calib(kitti / "calib" / "000000.txt")
    rgb = np.asarray(PILImage.open(kitti / "image_2" / "000000.png").convert("RGB"))
    n0 = np.fromfile(kitti / "velodyne" / "000000.bin", np.float32).size // 4
    fused: list = []
    ros_node.create_subscription(PointCloud2, "/fused/points", fused.append, RELIABLE)
    cam = {"source": "images", "images.color": str(kitti / "image_2" / "000000.png"),
           "images.kitti_calib": str(kitti / "calib" / "000000.txt"), "images.fps": 10.0, "qos": "reliable",
           "align_depth.enable": False}
    fusion = {"ir_topic": "none", "color_topic": "/camera/color/image_raw", "odom_topic": "none",
              "qos": "reliable", "sync_timeout": 0.5, "slop": 0.2}
    lidar = {"source": "kitti", "kitti_path": str(kitti), "qos": "reliable", "camera_frame": "camera_color_optical_frame"}

    def matched(m) -> bool:
        return m.width == n0 and np.isfinite(conv.pointcloud2_to_fields(m, ["rgb"])["rgb"]).any()

    with NodeProcess.node("camera_node", cam) as camera, NodeProcess.node("lidar_node", lidar) as lid, \
            NodeProcess.node("lidar_fusion_node", fusion) as fus:
        ok = spin_until(ros_node, lambda: any(matched(m) for m in fused), 60.0)
        logs = camera.output()[-1500:] + lid.output()[-1500:] + fus.output()[-1500:]
        assert camera.stop() == 0 and lid.stop() == 0 and fus.stop() == 0
    assert ok, logs
    msg = next(m for m in fused if matched(m))
    seen, values, iv, iu = projected_pixels(msg, "rgb", calib.projection(2))
    assert 15_000 < seen < 21_000  # ~20k in the image, minus the occluded
    r, g, b = unpack_rgb(values)
    np.testing.assert_array_equal(np.stack([r, g, b], 1), rgb[iv, iu])


def test_float_tiff_and_npy_depth_in_metres_and_16_bit_ir(tmp_path):
    rng = np.random.default_rng(0)
    h, w = 24, 32
    for d in ("rgb", "depth", "ir"):
        (tmp_path / d).mkdir()
    depth = rng.uniform(0.5, 4.0, (2, h, w)).astype(np.float32)
    depth[0, :3] = np.nan  # invalid
    for k in range(2):
        PILImage.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "rgb" / f"f{k}.png")
        PILImage.fromarray((rng.integers(0, 4000, (h, w)) * 16).astype(np.uint16)).save(tmp_path / "ir" / f"f{k}.png")
    PILImage.fromarray(depth[0], mode="F").save(tmp_path / "depth" / "f0.tiff")
    np.save(tmp_path / "depth" / "f1.npy", depth[1])
    src = ImageFolderSource(ImageSettings(color=str(tmp_path / "rgb"), depth=str(tmp_path / "depth"),
                                          ir=str(tmp_path / "ir"), intrinsics=(30.0, 30.0, 16.0, 12.0),
                                          loop=False, real_time=False))
    src.start()
    for k in range(2):
        fs = src.read(1.0)
        want = np.where(np.isfinite(depth[k]), np.rint(depth[k] * 1000.0), 0).astype(np.uint16)
        np.testing.assert_array_equal(fs.depth, want)
        assert fs.ir.dtype == np.uint8 and fs.ir.shape == (h, w)
    assert src.available_streams() == {"color", "depth", "infra1"}
