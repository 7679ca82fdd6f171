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


def pictures(msgs: dict[str, Any]) -> dict[str, np.ndarray]:
    """{label: rgb8}: every picture-like topic, plus LiDAR overlays on IR and color."""
    out: dict[str, np.ndarray] = {}
    bases: dict[str, np.ndarray] = {}
    lidar: list[tuple[str, np.ndarray]] = []
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
            bases.setdefault(kind, out[topic])
        if kind == "lidar_depth":
            lidar.append((topic, image_array(msg)))
    for topic, sparse in lidar:
        for kind, base in bases.items():
            out[f"{topic} over {kind}"] = overlay_sparse_depth(base, sparse)
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


def write_preview(msgs: dict[str, Any], path: Path) -> Path:
    """The mosaic of every picture in `msgs` ({topic: message}) as one PNG."""
    return save_png(mosaic(pictures(msgs)), Path(path))


def write_pngs(msgs: dict[str, Any], out_dir: Path) -> list[Path]:
    """One PNG per picture (file name from the topic) and the mosaic preview.png."""
    pics = pictures(msgs)
    written = [save_png(img, out_dir / (_file_name(label) + ".png"))
               for label, img in pics.items()]
    if pics:
        written.append(save_png(mosaic(pics), out_dir / "preview.png"))
    return written


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") or "image"


# --- sources -----------------------------------------------------------------------------


def messages_from_bag(path: Path, topics: list[str] | None = None, at: float | None = None
                      ) -> dict[str, Any]:
    """The message of each Image topic at `at` s from the bag's start (default: the last)."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from depth_ai_nodes.tools.bag import message_class

    raw: dict[str, tuple[bytes, str]] = {}
    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.msgtype == IMAGE_TYPE
                 and (not topics or c.topic in topics)]
        start = reader.start_time
        for conn, stamp, data in reader.messages(connections=conns):
            if at is not None and (stamp - start) * 1e-9 > at and conn.topic in raw:
                continue
            raw[conn.topic] = (bytes(data), conn.msgtype)
    return {t: deserialize_message(d, message_class(m)) for t, (d, m) in raw.items()}


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
        msgs = messages_from_bag(Path(args.bag), args.topics, args.at)
    else:
        msgs = messages_from_graph(args.topics, args.timeout)
    if not msgs:
        print("depth-ai preview: no image messages found"
              + ("" if args.bag else f" within {args.timeout:g} s"), file=sys.stderr)
        return 1
    for path in write_pngs(msgs, Path(args.out)):
        print(path)
    return 0
