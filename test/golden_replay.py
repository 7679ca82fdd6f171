"""Golden-output regression: a bag made from the built-in scene, replayed through
depth_inference_node and lidar_fusion_node; what they publish is summarised per
frame (keyed by the input stamp) and compared with test/golden/*.json.

The input bag is generated at test time, deterministically, from the scene
renderer (no binary in the repo): camera frames at 20 Hz (color, IR, depth,
depth aligned to color, camera_infos) and LiDAR scans at 10 Hz of the same
world, the LiDAR -> camera extrinsics latched. Topic names are the nodes'
default input topics, read from their PARAMETERS tables.

Regenerate the references after an intended change of a node's output:
    python test/golden_replay.py
(run from the repository root, with the venv active).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
W, H = 320, 240
CAMERA_HZ, LIDAR_HZ = 20.0, 10.0
CAMERA_FRAMES, LIDAR_SCANS = 24, 12
T0_NS = 1_700_000_000_000_000_000
SEED = 0
PLAY_RATE = 0.25          # bag time runs at a quarter speed: the CPU model keeps up
RTOL, ATOL = 0.03, 1e-3   # per-figure tolerance
MIN_COMMON = 3            # frames that must be in both the run and the reference

# node key -> parameters that differ from its config file in the replay
REPLAY_PARAMS = {
    "inference": {"expected_rate": 0.0},
    # the bag carries no odometry: no motion compensation; the bag plays at a quarter
    # speed, so a cloud may wait longer for the camera frame after it (sync is not
    # what this test regresses)
    "fusion": {"odom_topic": "", "sync_timeout": 1.0},
}


def _defaults(key: str) -> dict[str, Any]:
    from depth_ai_nodes.pipeline import BY_KEY, node_parameters

    return node_parameters(BY_KEY[key]) or {}


def input_topics() -> dict[str, str]:
    """Role -> topic, from the nodes' own default parameters."""
    inf, fus = _defaults("inference"), _defaults("fusion")
    return {"color": inf.get("color_topic", "/camera/color/image_raw"),
            "color_info": inf.get("color_info_topic", "/camera/color/camera_info"),
            "aligned_depth": inf.get("depth_topic", "/camera/aligned_depth_to_color/image_raw"),
            "ir": fus.get("ir_topic", "/camera/infra1/image_rect_raw"),
            "ir_info": fus.get("ir_info_topic", "/camera/infra1/camera_info"),
            "cloud": fus.get("cloud_topic", "/lidar/points"),
            "extrinsics": fus.get("extrinsics_topic", "/lidar/extrinsics/lidar_to_camera")}


def make_input_bag(path: Path) -> str:
    """Write the input bag; returns its summary: a digest of the pixel and point data
    (exact, same machine) and per-stream figures (compared with a tolerance, as another
    CPU may round a few depth pixels differently)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    from depth_ai_nodes.core.registration import align_depth_to_color
    from depth_ai_nodes.core.scene import (CameraRig, DepthSensorModel, SyntheticCamera, World)
    from depth_ai_nodes.core.transforms import RigidTransform
    from depth_ai_nodes.lidar.synthetic import SyntheticLidarSource
    from depth_ai_nodes.ros import conversions as conv
    from depth_ai_nodes.tools.bag import qos_to_bag, typestore_for

    topics = input_topics()
    rig = CameraRig(width=W, height=H, fps=CAMERA_HZ)
    camera = SyntheticCamera(World.default(seed=SEED), rig, seed=SEED,
                             sensor=DepthSensorModel(emitter_on=True))
    lidar = SyntheticLidarSource(beams=32, columns=1024, rate_hz=LIDAR_HZ, seed=SEED,
                                 real_time=False, scene_time_origin=T0_NS * 1e-9,
                                 camera_width=W, camera_height=H)
    best_effort = qos_to_bag(QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                                        durability=DurabilityPolicy.VOLATILE))
    latched = qos_to_bag(QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL))
    types = {"color": "sensor_msgs/msg/Image", "aligned_depth": "sensor_msgs/msg/Image",
             "ir": "sensor_msgs/msg/Image", "color_info": "sensor_msgs/msg/CameraInfo",
             "ir_info": "sensor_msgs/msg/CameraInfo", "cloud": "sensor_msgs/msg/PointCloud2",
             "extrinsics": "depth_ai_nodes/msg/Extrinsics"}
    store = typestore_for(set(types.values()))
    digest = hashlib.sha256()
    sums: dict[str, list[float]] = {}
    records: list[tuple[int, str, bytes]] = []

    ext = conv.extrinsics_to_msg(RigidTransform(np.asarray(lidar.camera_from_lidar)), "lidar_link",
                                 "camera_infra1_optical_frame", stamp=T0_NS)
    records.append((T0_NS, "extrinsics", serialize_message(ext)))
    for k in range(CAMERA_FRAMES):
        stamp = T0_NS + int(round(k * 1e9 / CAMERA_HZ))
        f = camera.render(k / CAMERA_HZ, frame_index=k)
        aligned = align_depth_to_color(f.depth_mm, rig.depth_model, rig.color_model,
                                       rig.depth_to_color, depth_scale=rig.depth_scale)
        for role, arr, enc, model, frame in (
                ("color", f.color, "rgb8", rig.color_model, "camera_color_optical_frame"),
                ("aligned_depth", aligned, "16UC1", rig.color_model, "camera_color_optical_frame"),
                ("ir", f.ir, "mono8", rig.ir_model, "camera_infra1_optical_frame")):
            digest.update(np.ascontiguousarray(arr).tobytes())
            sums.setdefault(f"{role}_mean", []).append(float(np.mean(arr)))
            sums.setdefault(f"{role}_nonzero", []).append(float(np.count_nonzero(arr)))
            records.append((stamp, role, serialize_message(
                conv.array_to_image(np.ascontiguousarray(arr), enc, frame_id=frame, stamp=stamp))))
            info_role = {"color": "color_info", "ir": "ir_info"}.get(role)
            if info_role:
                records.append((stamp, info_role, serialize_message(
                    conv.model_to_camera_info(model, frame_id=frame, stamp=stamp))))
    for _ in range(LIDAR_SCANS):
        scan = lidar.read(0.0)
        # the layout lidar_node publishes
        cols = {k: scan.points[k] for k in ("x", "y", "z", "intensity", "t", "ring")}
        msg = conv.fields_to_pointcloud2(cols, frame_id=scan.frame_id, stamp=scan.stamp_ns,
                                         point_step=24)
        digest.update(bytes(msg.data))
        rng = np.sqrt(cols["x"] ** 2 + cols["y"] ** 2 + cols["z"] ** 2)
        sums.setdefault("cloud_points", []).append(float(np.isfinite(rng).sum()))
        sums.setdefault("cloud_range_mean", []).append(float(np.nanmean(rng)))
        # a spinning LiDAR publishes its revolution when it ends
        records.append((scan.stamp_ns + int(1e9 / LIDAR_HZ), "cloud", serialize_message(msg)))

    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {role: writer.add_connection(
            topics[role], types[role], typestore=store,
            offered_qos_profiles=[latched if role == "extrinsics" else best_effort])
            for role in types}
        for stamp, role, raw in sorted(records, key=lambda r: r[0]):
            writer.write(conns[role], stamp, raw)
    return {"digest": digest.hexdigest(), **{k: float(np.mean(v)) for k, v in sums.items()}}


def compare_inputs(now: dict[str, Any], ref: dict[str, Any], rtol: float = 2e-3) -> list[str]:
    """Input figures that differ from the reference's beyond `rtol` (the digest only
    decides when every figure agrees, so it is not compared)."""
    return [f"input {k}: {now.get(k)} now, {v} in the reference" for k, v in ref.items()
            if k != "digest" and (now.get(k) is None or abs(now[k] - v) > rtol * abs(v) + 1e-9)]


# --- summaries of the outputs --------------------------------------------------------------


def _stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _valid_stats(values: np.ndarray, prefix: str) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v) & (v > 0)]
    out = {f"{prefix}valid_fraction": float(ok.size / max(v.size, 1))}
    if ok.size:
        out.update({f"{prefix}mean": float(ok.mean()), f"{prefix}p10": float(np.percentile(ok, 10)),
                    f"{prefix}p90": float(np.percentile(ok, 90))})
    return out


def summarise(role: str, msg: Any) -> dict[str, float]:
    """The figures kept for one output message."""
    from depth_ai_nodes.ros.conversions import image_to_array, pointcloud2_to_fields

    if role in ("inference_depth", "lidar_depth"):
        return _valid_stats(image_to_array(msg), "")
    if role == "confidence":
        c = image_to_array(msg).astype(np.float64)
        return {"mean": float(np.nanmean(c)) if np.isfinite(c).any() else 0.0}
    names = [n for n in ("x", "ir") if n in {f.name for f in msg.fields}]
    cols = pointcloud2_to_fields(msg, names)
    out = {"points": float(cols["x"].size)}
    if "ir" in cols:
        ir = cols["ir"].astype(np.float64)
        fin = np.isfinite(ir)
        # a cloud that found no camera frame in time goes out with NaN camera fields
        # (a timing outcome, not an output to regress): only matched clouds compare
        out["matched"] = float(fin.any())
        out["ir_finite_fraction"] = float(fin.mean()) if ir.size else 0.0
        out["ir_mean"] = float(ir[fin].mean()) if fin.any() else 0.0
    return out


def output_topics() -> dict[str, tuple[str, str]]:
    """role -> (topic, node key) of the outputs compared."""
    from depth_ai_nodes.pipeline import BY_KEY

    def topic(key: str, suffix: str) -> str:
        return next(o.topic for o in BY_KEY[key].outputs if o.topic.endswith(suffix))

    return {"inference_depth": (topic("inference", "/depth"), "inference"),
            "confidence": (topic("inference", "/confidence"), "inference"),
            "fused_points": (topic("fusion", "/fused/points"), "fusion"),
            "lidar_depth": (topic("fusion", "/lidar_depth"), "fusion")}


def replay(bag: Path, node: Any, keys: list[str], timeout: float = 120.0
           ) -> dict[str, dict[str, dict[str, float]]]:
    """Start the nodes of `keys`, play `bag` once they subscribe, summarise their
    outputs: {role: {stamp_ns (str): figures}}."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    from depth_ai_nodes.pipeline import BY_KEY, Planned
    from harness import NodeProcess, executable, spin_until

    roles = {r: t for r, t in output_topics().items() if t[1] in keys}
    got: dict[str, dict[str, dict[str, float]]] = {r: {} for r in roles}
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.BEST_EFFORT)
    subs = [node.create_subscription(
        PointCloud2 if r == "fused_points" else Image, topic,
        lambda m, r=r: got[r].setdefault(str(_stamp_ns(m)), summarise(r, m)), qos)
        for r, (topic, _) in roles.items()]
    procs = []
    try:
        for key in keys:
            planned = Planned(BY_KEY[key], dict(REPLAY_PARAMS.get(key, {})))
            procs.append(NodeProcess([executable(BY_KEY[key].executable), *planned.ros_args()]))
        topics = input_topics()
        wait = [topics["color"]] if "inference" in keys else []
        wait += [topics["cloud"], topics["ir"]] if "fusion" in keys else []
        player = NodeProcess([executable("depth-ai"), "play", str(bag), "--rate", str(PLAY_RATE),
                              "--wait-for-subscribers", "1", "--wait-topics", *wait,
                              "--wait-timeout", "90"])
        procs.append(player)
        spin_until(node, lambda: player.proc.poll() is not None
                   or not all(p.alive() for p in procs[:-1]), timeout)
        # the last frames are still being processed when the player ends
        deadline = time.monotonic() + 5.0
        spin_until(node, lambda: time.monotonic() > deadline, 6.0)
        for p in procs[:-1]:
            assert p.alive(), f"{p.command[0]} died during the replay:\n{p.output()[-3000:]}"
        assert player.proc.returncode == 0, player.output()
        for p in procs[:-1]:
            assert p.stop() == 0, p.output()[-3000:]
    finally:
        for s in subs:
            node.destroy_subscription(s)
        for p in procs:
            p.__exit__(None, None, None)
    return got


def compare(now: dict[str, dict[str, dict[str, float]]],
            ref: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Differences beyond tolerance, as readable lines (empty: all within)."""
    problems = []
    for role, frames in ref.items():
        mine = now.get(role, {})
        common = sorted(s for s in set(frames) & set(mine)
                        if frames[s].get("matched", 1.0) and mine[s].get("matched", 1.0))
        if len(common) < MIN_COMMON:
            problems.append(f"{role}: only {len(common)} frames in common with the reference "
                            f"(now {len(now.get(role, {}))}, reference {len(frames)})")
            continue
        for stamp in common:
            for key, want in frames[stamp].items():
                have = now[role][stamp].get(key)
                if have is None or abs(have - want) > ATOL + RTOL * abs(want):
                    problems.append(f"{role} @ {stamp}: {key} = {have}, reference {want}")
    return problems


def model_digest() -> str:
    """sha256 of the shipped model the inference node runs by default (context for a
    failing comparison: a retrained model changes the outputs)."""
    from depth_ai_nodes.resources import DEFAULT_MODEL_SPEC, model_path

    path = model_path(DEFAULT_MODEL_SPEC.replace(".yaml", ".onnx"))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def golden_path(key: str) -> Path:
    return GOLDEN / f"{key}.json"


def regenerate() -> int:
    import tempfile

    import rclpy

    from depth_ai_nodes.ros.dds import dds_environment

    os.environ.update(dds_environment())
    rclpy.init()
    node = rclpy.create_node("golden_regenerate")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bag = Path(tmp) / "input"
            inputs = make_input_bag(bag)
            got = replay(bag, node, ["inference", "fusion"])
            GOLDEN.mkdir(exist_ok=True)
            for key in ("inference", "fusion"):
                mine = {r: v for r, v in got.items() if output_topics()[r][1] == key}
                golden_path(key).write_text(json.dumps(
                    {"input": inputs, "model_sha256": model_digest(), "outputs": mine},
                    indent=1, sort_keys=True) + "\n")
                print(f"{golden_path(key)}: " + ", ".join(f"{r} {len(v)} frames"
                                                          for r, v in mine.items()))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(regenerate())
