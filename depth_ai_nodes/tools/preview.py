"""`depth-ai preview`: PNG pictures of the pipeline's images, from live topics or a bag.

Colourised depth (camera, aligned, inference, ground truth), IR, color,
confidence, and the LiDAR depth image (fusion's `lidar_depth`, LiDAR points
already projected into the camera) drawn over IR and over color. One PNG per
topic plus `preview.png`, a labelled mosaic of all of them; the runner writes
the mosaic when it stops. Which picture a topic becomes is decided from its
name and encoding, so it works for any namespace.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from depth_ai_nodes.core.colormap import (colorize_depth, colorize_unit, gray_to_rgb,
                                          overlay_sparse_depth)

TILE_HEIGHT = 240
IMAGE_TYPE = "sensor_msgs/msg/Image"

def image_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> numpy (the shared converter, cv_bridge semantics)."""
    from depth_ai_nodes.ros.conversions import image_to_array

    return image_to_array(msg)


def classify(topic: str, msg: Any) -> str | None:
    """'color' | 'ir' | 'depth' | 'confidence' | 'lidar_depth' | None (not a picture)."""
    if not hasattr(msg, "encoding"):
        return None
    name = topic.lower()
    enc = msg.encoding
    if "lidar_depth" in name or "lidar/depth" in name:
        return "lidar_depth"
    if "confidence" in name:
        return "confidence"
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        return "color"
    if enc in ("mono8", "mono16", "8UC1") or "infra" in name or "near_ir" in name:
        return "ir"
    if enc in ("16UC1", "32FC1"):
        return "depth"
    return None


def render(kind: str, msg: Any) -> np.ndarray:
    """One topic's picture as rgb8."""
    arr = image_array(msg)
    if kind == "color":
        if msg.encoding.startswith("bgr"):
            arr = arr[..., 2::-1]
        return np.ascontiguousarray(arr[..., :3])
    if kind == "ir":
        return gray_to_rgb(arr)
    if kind == "confidence":
        return colorize_unit(arr)
    return colorize_depth(arr)  # depth and lidar_depth (sparse) alike


def _stamp(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _frame_transforms(msgs: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """{(to_frame, from_frame): RigidTransform} from Extrinsics messages, both ways."""
    from depth_ai_nodes.ros.conversions import msg_to_transform

    out = {}
    for msg in msgs.values():
        if hasattr(msg, "child_frame_id") and hasattr(msg, "rotation"):
            t = msg_to_transform(msg)  # maps points of header.frame_id into child_frame_id
            out[(msg.child_frame_id, msg.header.frame_id)] = t
            out[(msg.header.frame_id, msg.child_frame_id)] = t.inverse()
    return out


def _transform(transforms: dict[tuple[str, str], Any], to: str, frm: str) -> Any:
    """to <- frm through at most one intermediate frame (ir -> depth -> color)."""
    if to == frm:
        from depth_ai_nodes.core.transforms import RigidTransform

        return RigidTransform(np.eye(3), np.zeros(3))
    if (to, frm) in transforms:
        return transforms[(to, frm)]
    for (a, b), t1 in transforms.items():
        if a == to and (b, frm) in transforms:
            return t1 @ transforms[(b, frm)]
    return None


def reproject_sparse(sparse: np.ndarray, src_model: Any, dst_model: Any, dst_from_src: Any
                     ) -> np.ndarray:
    """A sparse depth image (e.g. LiDAR in the IR camera) seen from another camera: each
    valid pixel deprojected, moved, projected; nearest wins; NaN elsewhere."""
    d = np.asarray(sparse, dtype=np.float64)
    vs, us = np.nonzero(np.isfinite(d) & (d > 0))
    out = np.full((dst_model.height, dst_model.width), np.nan, np.float32)
    if vs.size == 0:
        return out
    pts = dst_from_src.apply(src_model.deproject(np.stack([us, vs], axis=1).astype(np.float64),
                                                 d[vs, us]))
    uv = np.rint(dst_model.project(pts))
    ok = np.isfinite(uv).all(axis=1) & (pts[:, 2] > 0)
    u, v, z = uv[ok, 0].astype(np.int64), uv[ok, 1].astype(np.int64), pts[ok, 2]
    inside = (u >= 0) & (u < dst_model.width) & (v >= 0) & (v < dst_model.height)
    u, v, z = u[inside], v[inside], z[inside]
    order = np.argsort(-z)  # far first: the nearest point of a pixel is written last
    out[v[order], u[order]] = z[order]
    return out


def _camera_models(msgs: dict[str, Any]) -> dict[str, Any]:
    """{frame_id: CameraModel} from the CameraInfo messages, by their frame id and size."""
    from depth_ai_nodes.ros.conversions import camera_info_to_model

    out = {}
    for msg in msgs.values():
        if hasattr(msg, "distortion_model") and hasattr(msg, "k"):
            out[(msg.header.frame_id, int(msg.width), int(msg.height))] = camera_info_to_model(msg)
    return out


def pictures(msgs: dict[str, Any], history: dict[str, list[Any]] | None = None
             ) -> dict[str, np.ndarray]:
    """{label: rgb8}: every picture-like topic, plus the LiDAR depth drawn over IR and color.

    `history` ({topic: older messages}) lets an overlay use the IR / color frame
    nearest in time to the LiDAR depth image rather than the newest. Over a camera
    other than the one the LiDAR depth was rendered for, the points are reprojected
    through the camera models (CameraInfo) and extrinsics (Extrinsics) when those are
    in `msgs`; without them the overlay is only rescaled and is labelled 'approx.'."""
    out: dict[str, np.ndarray] = {}
    bases: dict[str, str] = {}
    lidar: list[tuple[str, Any]] = []
    for topic, msg in sorted(msgs.items()):
        kind = classify(topic, msg)
        if kind is None:
            continue
        try:
            out[topic] = render(kind, msg)
        except ValueError as err:
            print(f"depth-ai preview: {topic}: {err}", file=sys.stderr)
            continue
        if kind in ("ir", "color"):
            bases.setdefault(kind, topic)
        if kind == "lidar_depth":
            lidar.append((topic, msg))
    if not lidar:
        return out
    models, transforms = _camera_models(msgs), _frame_transforms(msgs)
    for topic, lmsg in lidar:
        sparse = image_array(lmsg)
        src = models.get((lmsg.header.frame_id, int(lmsg.width), int(lmsg.height)))
        for kind, base_topic in bases.items():
            candidates = [msgs[base_topic], *(history or {}).get(base_topic, [])]
            base = min(candidates, key=lambda m: abs(_stamp(m) - _stamp(lmsg)))
            image = render(kind, base)
            label = f"{topic} over {kind}"
            if base.header.frame_id == lmsg.header.frame_id:
                points = sparse
            else:
                dst = models.get((base.header.frame_id, int(base.width), int(base.height)))
                move = _transform(transforms, base.header.frame_id, lmsg.header.frame_id)
                if src is not None and dst is not None and move is not None:
                    points = reproject_sparse(sparse, src, dst, move)
                else:
                    points, label = sparse, label + " (approx.)"
            out[label] = overlay_sparse_depth(image, points)
    return out


def _resize_nearest(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    width = max(1, int(round(w * height / h)))
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.int64)
    return img[rows][:, cols]


def mosaic(pics: dict[str, np.ndarray], columns: int = 3, height: int = TILE_HEIGHT
           ) -> np.ndarray:
    """Labelled tiles of equal height in a grid."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    tiles = []
    for label, img in pics.items():
        tile = PILImage.fromarray(_resize_nearest(img, height))
        draw = ImageDraw.Draw(tile)
        draw.rectangle([0, 0, tile.width, 12], fill=(0, 0, 0))
        draw.text((2, 0), label, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    if not tiles:
        raise ValueError("no image topics to show")
    width = max(t.shape[1] for t in tiles)
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    canvas = np.zeros((len(rows) * height, columns * width, 3), np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas[r * height:(r + 1) * height, c * width:c * width + tile.shape[1]] = tile
    return canvas


def save_png(img: np.ndarray, path: Path) -> Path:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(img).save(path)
    return path


def write_preview(msgs: dict[str, Any], path: Path,
                  history: dict[str, list[Any]] | None = None) -> Path:
    """The mosaic of every picture in `msgs` ({topic: message}) as one PNG."""
    return save_png(mosaic(pictures(msgs, history)), Path(path))


def write_pngs(msgs: dict[str, Any], out_dir: Path,
               history: dict[str, list[Any]] | None = None) -> list[Path]:
    """One PNG per picture (file name from the topic) and the mosaic preview.png."""
    pics = pictures(msgs, history)
    written = [save_png(img, out_dir / (_file_name(label) + ".png"))
               for label, img in pics.items()]
    if pics:
        written.append(save_png(mosaic(pics), out_dir / "preview.png"))
    return written


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") or "image"


# --- sources -----------------------------------------------------------------------------


PREVIEW_TYPES = (IMAGE_TYPE, "sensor_msgs/msg/CameraInfo", "depth_ai_nodes/msg/Extrinsics")
HISTORY = 30  # older frames kept per image topic, to pair the LiDAR depth with its camera frame


def messages_from_bag(path: Path, topics: list[str] | None = None, at: float | None = None
                      ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The message of each image topic at `at` s from the bag's start (default: the last),
    the camera infos and extrinsics, and the preceding frames of each image topic."""
    from collections import deque

    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from depth_ai_nodes.tools.bag import message_class

    raw: dict[str, deque] = {}
    types: dict[str, str] = {}
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.msgtype in PREVIEW_TYPES
                 and (not topics or c.topic in topics or c.msgtype != IMAGE_TYPE)]
        stop = None if at is None else reader.start_time + int(at * 1e9) + 1
        for conn, _, data in reader.messages(connections=conns, stop=stop):
            keep = HISTORY + 1 if conn.msgtype == IMAGE_TYPE else 1
            raw.setdefault(conn.topic, deque(maxlen=keep)).append(bytes(data))
            types[conn.topic] = conn.msgtype
    latest, history = {}, {}
    for topic, items in raw.items():
        cls = message_class(types[topic])
        msgs = [deserialize_message(d, cls) for d in items]
        latest[topic] = msgs[-1]
        if len(msgs) > 1:
            history[topic] = msgs[:-1]
    return latest, history


def messages_from_graph(topics: list[str] | None, timeout: float) -> dict[str, Any]:
    """One message from each live Image topic (or `topics`), QoS matched to its publisher."""
    import rclpy

    from depth_ai_nodes.ros.dds import dds_environment
    from depth_ai_nodes.ros.qos import matching_qos
    from depth_ai_nodes.tools.bag import message_class

    import os

    os.environ.update(dds_environment())
    rclpy.init()
    node = rclpy.create_node("depth_ai_preview")
    got: dict[str, Any] = {}
    subs: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, types in node.get_topic_names_and_types():
                if name in subs or (topics and name not in topics):
                    continue
                if not topics and IMAGE_TYPE not in types:
                    continue
                subs[name] = node.create_subscription(
                    message_class(types[0]), name, lambda m, n=name: got.setdefault(n, m),
                    matching_qos(node, name))
            rclpy.spin_once(node, timeout_sec=0.1)
            if subs and all(t in got for t in subs) and (not topics or set(topics) <= set(got)):
                break
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return got


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("preview", help="PNGs of depth, IR, confidence and LiDAR overlays",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--bag", default="", help="rosbag2 folder or file (default: live topics)")
    p.add_argument("--topics", nargs="*", default=None,
                   help="image topics to show (default: every Image topic)")
    p.add_argument("--at", type=float, default=None,
                   help="bag: seconds from its start (default: the last message of each topic)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="live: seconds to wait for one message of each topic")
    p.add_argument("--out", default="preview", help="output folder (default: ./preview)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.bag:
        if not Path(args.bag).exists():
            print(f"depth-ai preview: no bag at {args.bag}", file=sys.stderr)
            return 2
        msgs, history = messages_from_bag(Path(args.bag), args.topics, args.at)
    else:
        msgs, history = messages_from_graph(args.topics, args.timeout), {}
    if not msgs:
        print("depth-ai preview: no image messages found"
              + ("" if args.bag else f" within {args.timeout:g} s"), file=sys.stderr)
        return 1
    for path in write_pngs(msgs, Path(args.out), history):
        print(path)
    return 0
