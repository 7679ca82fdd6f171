"""Cross-process: camera_node (built-in scene) -> depth_inference_node -> this test process.

Depth accuracy is checked against the scene's exact ground truth (camera_node publishes
ground_truth/depth in the depth frame; the test registers it into the colour geometry
with the rig's calibration, where the inference output lives). Bad frames sent from
here must not stop the node. Start-up errors exit 2 with the reason.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_ai_nodes.msg import InferenceStats
from harness import NodeProcess, collect, executable, spin_until, wait_for_topics

pytestmark = pytest.mark.ros

CAMERA = {"source": "synthetic", "rgb_camera.color_profile": "640,480,6",
          "depth_module.depth_profile": "640,480,6", "depth_module.infra_profile": "640,480,6",
          "enable_infra1": False, "publish_tf": False, "qos": "reliable"}
NS = "/depth_inference"


def register_gt(gt_m: np.ndarray) -> np.ndarray:
    """Ground truth (depth frame, metres) -> colour geometry, librealsense align rules."""
    from depth_ai_nodes.core.registration import align_depth_to_color
    from depth_ai_nodes.core.scene import CameraRig

    rig = CameraRig(640, 480)
    units = 0.0002  # 0.2 mm steps keep GT exact to 0.1 mm up to 13 m
    q = np.clip(np.nan_to_num(gt_m) / units + 0.5, 0, 65535).astype(np.uint16)
    out = align_depth_to_color(q, rig.depth_model, rig.color_model, rig.depth_to_color, depth_scale=units)
    return out.astype(np.float32) * units


def frame_arrays(msg: Image, dtype) -> np.ndarray:
    return np.frombuffer(msg.data, dtype=dtype).reshape(msg.height, msg.width)


def test_scene_depth_accuracy_and_bad_frames(ros_node):
    with NodeProcess.node("camera_node", CAMERA, name="camera") as cam, \
            NodeProcess.node("depth_inference_node", {"qos": "reliable", "intra_op_threads": 1,
                                                       "depth_wait": 1.0, "publish_points": True,
                                                       "points_stride": 4}) as inf:
        assert wait_for_topics(ros_node, [f"{NS}/depth", "/camera/ground_truth/depth"], 40.0), \
            cam.output()[-2000:] + inf.output()[-2000:]
        got = collect(ros_node, {f"{NS}/depth": Image, f"{NS}/camera_info": CameraInfo,
                                 f"{NS}/confidence": Image, f"{NS}/stats": InferenceStats,
                                 f"{NS}/points": PointCloud2,
                                 "/camera/ground_truth/depth": Image,
                                 "/camera/aligned_depth_to_color/image_raw": Image},
                      count=4, timeout=60.0, qos=10,
                      stop_when=lambda g: len(g[f"{NS}/depth"]) >= 3 and len(g[f"{NS}/stats"]) >= 3
                      and len(g[f"{NS}/camera_info"]) >= 1 and len(g[f"{NS}/points"]) >= 1)
        assert len(got[f"{NS}/depth"]) >= 3, inf.output()[-3000:]
        gts = {(m.header.stamp.sec, m.header.stamp.nanosec): m for _, m in got["/camera/ground_truth/depth"]}
        sensors = {(m.header.stamp.sec, m.header.stamp.nanosec): m
                   for _, m in got["/camera/aligned_depth_to_color/image_raw"]}
        checked = 0
        for _, d in got[f"{NS}/depth"]:
            key = (d.header.stamp.sec, d.header.stamp.nanosec)
            if key not in gts or key not in sensors:
                continue
            assert d.encoding == "32FC1" and (d.width, d.height) == (640, 480)
            assert d.header.frame_id == "camera_color_optical_frame"
            pred = frame_arrays(d, np.float32)
            gt = register_gt(frame_arrays(gts[key], np.float32))
            sensor = frame_arrays(sensors[key], np.uint16)
            ok = (gt > 0) & np.isfinite(pred)
            assert ok.mean() > 0.5
            rel = np.abs(pred[ok] - gt[ok]) / gt[ok]
            holes = ok & (sensor == 0)
            rel_holes = np.abs(pred[holes] - gt[holes]) / gt[holes]
            measured = ok & (sensor > 0)
            rel_measured = np.abs(pred[measured] - gt[measured]) / gt[measured]
            print(f"median rel err {np.median(rel):.4f}, delta1 {np.mean(rel < 0.25):.3f}, "
                  f"where measured {np.mean(rel_measured < 0.25):.4f}")
            # where the sensor saw the surface the output is that surface (noise-level errors);
            # in the sensor's holes (glass, far wall, occlusion shadows) it is a fill, looser.
            # delta1 over all pixels mixes the two in the share the pose of the moment gives
            # (0.84-0.97 seen), so it is asserted where the sensor measured only
            assert np.isfinite(pred[gt > 0]).mean() > 0.99
            assert np.median(rel) < 0.02
            assert np.mean(rel_measured < 0.25) > 0.93
            # the scene's sensor holes (glass, beyond range, occlusion shadows) are mostly not
            # fillable from context, and what they hide changes with the scene time of the
            # frame: median relative error 0.015-0.62 seen here, even on the hole borders, and
            # OpenCV Telea is as far off in such holes (0.06-0.63 on four scene frames of
            # tools/evaluate.load_scene, where the model gives 0.05-0.67). Reported, not asserted;
            # the fill itself is asserted deterministically in test_depth_eval.py and by the
            # golden replay, and measured on real frames by `depth-ai eval`
            print(f"in sensor holes: median rel err {np.median(rel_holes):.3f} ({holes.sum()} px)")
            assert holes.sum() > 100
            checked += 1
        assert checked >= 1, "no inference output matched a ground-truth stamp"
        info = got[f"{NS}/camera_info"][-1][1]
        assert (info.width, info.height) == (640, 480) and info.k[0] == pytest.approx(615.0, rel=1e-3)
        conf = frame_arrays(got[f"{NS}/confidence"][-1][1], np.float32)
        assert 0.0 <= conf.min() and conf.max() <= 1.0 and conf.mean() > 0.3
        cloud = got[f"{NS}/points"][-1][1]
        assert [f.name for f in cloud.fields][:3] == ["x", "y", "z"]
        assert cloud.header.frame_id == "camera_color_optical_frame" and cloud.width * cloud.height > 10000
        pts = np.frombuffer(cloud.data, np.uint8).reshape(-1, cloud.point_step)
        zo = next(f.offset for f in cloud.fields if f.name == "z")
        z = pts[:, zo:zo + 4].copy().view(np.float32).ravel()
        z = z[np.isfinite(z)]
        assert 0.1 < np.median(z) < 20.0
        st = got[f"{NS}/stats"][-1][1]
        assert st.model == "depth_fill_classical" and st.model_latency_ms > 0
        assert st.node_latency_ms >= st.model_latency_ms
        cam.stop()

        # bad frames from this process: wrong encoding, then depth of the wrong size
        color_pub = ros_node.create_publisher(Image, "/camera/color/image_raw", 10)
        depth_pub = ros_node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", 10)
        diags: list[DiagnosticArray] = []
        ros_node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        outs: list[Image] = []
        ros_node.create_subscription(Image, f"{NS}/depth", outs.append, 10)
        spin_until(ros_node, lambda: color_pub.get_subscription_count() > 0
                   and depth_pub.get_subscription_count() > 0, 10.0)

        def send(color_enc: str, cw: int, dw: int, stamp: int) -> None:
            c = Image(encoding=color_enc, width=cw, height=48, step=cw * 3)
            c.header.stamp.sec = stamp
            c.data = np.full((48, cw, 3), 90, np.uint8).tobytes()
            d = Image(encoding="16UC1", width=dw, height=48, step=dw * 2)
            d.header.stamp.sec = stamp
            d.data = np.full((48, dw), 1500, np.uint16).tobytes()
            depth_pub.publish(d)
            color_pub.publish(c)

        def resend_until(args: tuple, pred, timeout: float = 20.0) -> bool:
            """Best-effort input: resend once a second until the node shows the effect."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                send(*args)
                if spin_until(ros_node, pred, 1.0):
                    return True
            return False

        def diag_says(text: str):
            return lambda: any(text in s.message for a in diags[-2:] for s in a.status)

        assert resend_until(("yuv422_weird", 64, 64, 1000), diag_says("unsupported image encoding")), \
            inf.output()[-2000:]
        # a camera_info with NaN in K is rejected, never republished with the output (it was)
        infos: list[CameraInfo] = []
        ros_node.create_subscription(CameraInfo, f"{NS}/camera_info", infos.append, 10)
        info_pub = ros_node.create_publisher(CameraInfo, "/camera/color/camera_info", 10)
        nan_info = CameraInfo(width=64, height=48, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=[float("nan"), 0, 32, 0, 50.0, 24, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                              p=[50.0, 0, 32, 0, 0, 50.0, 24, 0, 0, 0, 1, 0])
        nan_info.header.frame_id = "camera_color_optical_frame"

        def nan_rejected() -> bool:
            info_pub.publish(nan_info)
            return any(kv.key == "rejected non_finite" and int(kv.value) > 0
                       for a in diags[-4:] for s in a.status if s.name.endswith(": inputs") for kv in s.values)
        assert resend_until(("rgb8", 64, 64, 999), nan_rejected), inf.output()[-2000:]
        assert resend_until(("rgb8", 64, 32, 1001), diag_says("registered to the colour image")), \
            inf.output()[-2000:]
        assert inf.alive()
        # a good frame after bad ones is processed
        assert resend_until(("rgb8", 64, 64, 1002), lambda: any(o.header.stamp.sec == 1002 for o in outs)), \
            inf.output()[-2000:]
        good = next(o for o in outs if o.header.stamp.sec == 1002)
        assert all(np.isfinite(i.k).all() for i in infos), "a NaN camera_info was republished"
        assert np.nanmedian(frame_arrays(good, np.float32)) == pytest.approx(1.5, rel=0.02)
        assert "frame skipped" in inf.output()
        assert inf.stop() == 0
        assert cam.proc.returncode == 0


@pytest.mark.parametrize("params,reason", [
    ({"model": "/nonexistent/spec.yaml"}, "model spec /nonexistent/spec.yaml does not exist"),
    ({"providers": "[TensorrtExecutionProvider]"}, "TensorrtExecutionProvider.*not available"),
    ({"edge_snap": 4}, "edge_snap=4 is not valid.*odd number"),
    ({"input_qos_depth": -1}, "input_qos_depth -1: use 0"),
])
def test_config_errors_exit_2(params, reason):
    import re

    proc = NodeProcess([executable("depth_inference_node"), "--ros-args",
                        *sum((["-p", f"{k}:={v}"] for k, v in params.items()), [])])
    with proc:
        code = proc.wait(timeout=60)
        out = proc.output()
    assert code == 2, out
    assert "configuration error" in out and re.search(reason, out), out
