"""The one boundary where messages enter a node: message -> validated core data, or Rejected.

Node callbacks call one reader per message type; each returns plain, checked data (numpy
arrays, CameraModel, 4x4 matrices, float seconds) or raises `core.rejection.Rejected` with
one of the fixed `Reason`s. `InputGate` is the node side of it: it counts rejections per
reason in /diagnostics, logs each reason at most once per `log_period_s` with the latest
detail (the text varies, the category does not), and applies time sanity per stream
(`core.stamps`). Node shells never parse message fields themselves.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_ai_nodes.core import image_codec
from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.image_codec import ImageFormatError
from depth_ai_nodes.core.pointcloud import DATATYPES, PointCloudFormatError
from depth_ai_nodes.core.rejection import Reason, Rejected
from depth_ai_nodes.core.stamps import SequenceGaps, StampGuard, StampPolicy
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros.diagnostics import OK, WARN, Diagnostics
from depth_ai_nodes.ros.executor import WithInfo
from depth_ai_nodes.ros.params import Param

__all__ = ["COLOR_ENCODINGS", "DEPTH_ENCODINGS", "MONO_ENCODINGS", "Reason", "Rejected", "ImageData", "CloudData", "TwistData", "InputGate", "STAMP_PARAMETERS",
           "stamp_policy", "image", "mono_image", "color_image", "depth_image", "camera_info", "cloud",
           "twist", "extrinsics", "transform", "decompressed", "transport_topic", "undecoded", "image_from", "HeldImage", "TRANSPORTS", "CLOUD_TRANSPORTS", "decompressed_cloud",
           "DecompressedCloud", "MAX_SPEED", "MAX_ANGULAR_RATE", "MAX_IMAGE_PIXELS", "MAX_SCAN_TIME"]

MAX_IMAGE_PIXELS = 8192 * 8192   # larger than any depth camera: a corrupt header, not a frame
MAX_SPEED = 100.0                # m/s: faster odometry is a fault, not a robot
MAX_ANGULAR_RATE = 50.0          # rad/s (~8 turns/s)
MAX_SCAN_TIME = 1.0              # s: per-point times beyond this are no scan offsets
NEWEST_DRAIN_MAX = 1000          # queued messages one newest-only call takes at most (no endless drain)
MONO_ENCODINGS = ("mono8", "8UC1", "mono16", "16UC1", "32FC1")
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "8UC3", "mono8", "8UC1")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
IMAGE_WHAT = {"ir": "IR image", "color": "colour image", "depth": "depth image"}  # streams' names in reasons

STAMP_PARAMETERS: list[Param] = [
    Param("max_stamp_ahead", 2.0, "Inputs stamped later than this node's clock (ROS time: sim time "
          "when use_sim_time) by more are rejected as bad_stamp; 0: off.", "s"),
    Param("max_stamp_age", 0.0, "Inputs stamped earlier than this node's clock by more are rejected "
          "as bad_stamp; 0: off (recordings replayed without --clock keep their old stamps).", "s"),
]


def stamp_policy(p: dict) -> StampPolicy:
    ahead, age = float(p["max_stamp_ahead"]), float(p["max_stamp_age"])
    if not (math.isfinite(ahead) and math.isfinite(age)) or ahead < 0 or age < 0:
        from depth_ai_nodes.ros.node_main import ConfigError
        raise ConfigError(f"max_stamp_ahead ({ahead}) and max_stamp_age ({age}) must be >= 0 (0: off)")
    return StampPolicy(max_ahead_s=ahead, max_age_s=age)


# --- data the readers return ----------------------------------------------------------------
@dataclass
class ImageData:
    stamp: Any                  # builtin_interfaces/Time, for the outputs' headers
    stamp_s: float
    frame_id: str
    encoding: str
    array: np.ndarray           # (H, W) or (H, W, C); a zero-copy view where possible


@dataclass
class CloudData:
    stamp: Any
    stamp_s: float
    frame_id: str
    cols: dict[str, np.ndarray]  # x, y, z float32 finite; intensity float32; t float64 s (optional)
    dropped_points: int = 0      # points with non-finite x/y/z, removed
    notes: list[Rejected] = field(default_factory=list)  # parts ignored (the cloud is still used)

    @property
    def size(self) -> int:
        return int(self.cols["x"].shape[0])


@dataclass
class TwistData:
    stamp_s: float
    linear: np.ndarray          # (3,) m/s
    angular: np.ndarray         # (3,) rad/s
    frame_id: str               # the body the twist is of (odometry child frame)


# --- readers ----------------------------------------------------------------------------------
def _stamp(msg: Any) -> tuple[Any, float]:
    st = msg.header.stamp
    return st, conv.stamp_to_s(st)


def image(msg: Image, accept: Sequence[str], what: str) -> ImageData:
    """Any Image whose encoding is in `accept`, decoded (sizes, step and data length checked)."""
    if msg.encoding not in accept:
        raise Rejected(Reason.UNSUPPORTED, f"unsupported image encoding {msg.encoding!r} for the {what} "
                       f"(accepted: {', '.join(accept)})")
    if msg.width == 0 or msg.height == 0:
        raise Rejected(Reason.EMPTY, f"{what} is {msg.width}x{msg.height}")
    if msg.width * msg.height > MAX_IMAGE_PIXELS:
        raise Rejected(Reason.OUT_OF_RANGE, f"{what} claims {msg.width}x{msg.height} pixels")
    try:
        arr = conv.image_to_array(msg)
    except (ImageFormatError, ValueError) as err:
        raise Rejected(Reason.MALFORMED, f"{what}: {err}") from None
    st, s = _stamp(msg)
    return ImageData(st, s, msg.header.frame_id, msg.encoding, arr)


def mono_image(msg: Image, what: str = "IR image") -> ImageData:
    """A single-channel intensity image (mono8/mono16/32FC1): never a colour buffer read as one."""
    return image(msg, MONO_ENCODINGS, what)


def color_image(msg: Image, what: str = "colour image") -> ImageData:
    """A colour image as (H, W, 3) uint8 RGB (mono8 is replicated)."""
    data = image(msg, COLOR_ENCODINGS, what)
    try:
        data.array = image_codec.convert(data.array, data.encoding, "rgb8")
    except (ImageFormatError, ValueError) as err:
        raise Rejected(Reason.UNSUPPORTED, f"{what}: {err}") from None
    data.encoding = "rgb8"
    return data


def depth_image(msg: Image, depth_scale: float = 0.001, what: str = "depth image") -> ImageData:
    """16UC1 / mono16 (units of depth_scale) or 32FC1 (m) -> float32 metres, 0/NaN invalid (REP-118)."""
    data = image(msg, DEPTH_ENCODINGS, what)
    if data.encoding == "32FC1":
        data.array = data.array.astype(np.float32, copy=False)
    else:
        data.array = data.array.astype(np.float32) * np.float32(depth_scale)
    data.encoding = "32FC1"
    return data


def camera_info(msg: CameraInfo, what: str = "camera_info") -> CameraModel:
    """A calibrated CameraInfo as a CameraModel; NaN/Inf, a non-positive focal length or an
    empty size are refused (a model built from them would poison every projection)."""
    if msg.width == 0 or msg.height == 0:
        raise Rejected(Reason.EMPTY, f"{what} for {msg.header.frame_id!r} has size {msg.width}x{msg.height}")
    k = np.asarray(msg.k, dtype=np.float64)
    numbers = np.concatenate([k, np.asarray(msg.d, np.float64), np.asarray(msg.p, np.float64),
                              np.asarray(msg.r, np.float64)])
    if not np.all(np.isfinite(numbers)):
        raise Rejected(Reason.NON_FINITE, f"{what} for {msg.header.frame_id!r} has NaN/Inf in K, D, R or P")
    if not (k[0] > 0 and k[4] > 0):
        raise Rejected(Reason.OUT_OF_RANGE, f"{what} for {msg.header.frame_id!r} is uncalibrated or "
                       f"invalid: fx {k[0]:g}, fy {k[4]:g} (must be > 0)")
    if k[8] != 1.0 or k[3] != 0.0 or k[6] != 0.0 or k[7] != 0.0:
        raise Rejected(Reason.MALFORMED, f"{what} for {msg.header.frame_id!r}: K is not "
                       f"[fx s cx; 0 fy cy; 0 0 1] ({list(k)})")
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if bx > msg.width or by > msg.height:
        raise Rejected(Reason.OUT_OF_RANGE, f"{what} for {msg.header.frame_id!r}: binning {bx}x{by} is "
                       f"larger than the image {msg.width}x{msg.height}")
    roi = msg.roi
    if (roi.width or roi.height) and (roi.x_offset + roi.width > msg.width or roi.y_offset + roi.height > msg.height
                                      or roi.width == 0 or roi.height == 0):
        raise Rejected(Reason.OUT_OF_RANGE, f"{what} for {msg.header.frame_id!r}: ROI {roi.width}x{roi.height} "
                       f"at ({roi.x_offset}, {roi.y_offset}) is not inside the image {msg.width}x{msg.height}")
    try:
        return conv.camera_info_to_model(msg)
    except ValueError as err:
        raise Rejected(Reason.MALFORMED, f"{what} for {msg.header.frame_id!r}: {err}") from None


def cloud(msg: PointCloud2 | DecompressedCloud, extra: Sequence[str] = ("intensity", "t")) -> CloudData:
    """A PointCloud2 read by field name: x, y, z (float32, finite points only) and the `extra`
    fields present. Each field must be a single scalar per point; per-point time `t` in ns
    (integer drivers) is converted to s, and a `t` that is non-finite or spans more than
    MAX_SCAN_TIME is ignored (noted) rather than trusted."""
    names = [f.name for f in msg.fields]
    missing = [k for k in ("x", "y", "z") if k not in names]
    if missing:
        raise Rejected(Reason.UNSUPPORTED, f"PointCloud2 missing field(s) {', '.join(missing)} "
                       f"(has: {', '.join(names) or 'none'})")
    wanted = ["x", "y", "z", *[k for k in extra if k in names]]
    for f in msg.fields:
        if f.name in wanted:
            if f.datatype not in DATATYPES:
                raise Rejected(Reason.MALFORMED, f"PointCloud2 field {f.name!r} has unknown datatype "
                               f"{f.datatype} (valid: 1..8)")
            if f.count > 1:
                raise Rejected(Reason.UNSUPPORTED, f"PointCloud2 field {f.name!r} has count {f.count}; "
                               f"one value per point is needed")
            if f.offset + DATATYPES[f.datatype].itemsize > msg.point_step:
                raise Rejected(Reason.MALFORMED, f"PointCloud2 field {f.name!r} at offset {f.offset} "
                               f"does not fit in point_step {msg.point_step}")
    if names.count("x") > 1 or names.count("y") > 1 or names.count("z") > 1:
        raise Rejected(Reason.MALFORMED, "PointCloud2 declares a coordinate field twice")
    n = int(msg.width) * int(msg.height)
    if n == 0:
        raise Rejected(Reason.EMPTY, "PointCloud2 has 0 points")
    if msg.row_step < msg.width * msg.point_step and msg.height > 1:
        raise Rejected(Reason.MALFORMED, f"PointCloud2 row_step {msg.row_step} < width*point_step "
                       f"{msg.width * msg.point_step}")
    try:
        cols = conv.pointcloud2_to_fields(msg, wanted)
    except (PointCloudFormatError, ValueError) as err:
        raise Rejected(Reason.MALFORMED, f"PointCloud2: {err}") from None
    out: dict[str, np.ndarray] = {}
    for k in ("x", "y", "z"):
        out[k] = cols[k].astype(np.float32, copy=False).reshape(-1)
    finite = np.isfinite(out["x"]) & np.isfinite(out["y"]) & np.isfinite(out["z"])
    bad = int(finite.size - np.count_nonzero(finite))
    if bad == finite.size:
        raise Rejected(Reason.NON_FINITE, f"all {bad} points have NaN/inf coordinates")
    notes: list[Rejected] = []
    if "intensity" in cols:
        out["intensity"] = cols["intensity"].astype(np.float32, copy=False).reshape(-1)
    if "t" in cols:
        t = cols["t"].reshape(-1)
        t = t.astype(np.float64) * 1e-9 if t.dtype.kind in "iu" else t.astype(np.float64)
        tf = t[finite]
        if not np.all(np.isfinite(tf)):
            notes.append(Rejected(Reason.NON_FINITE, f"PointCloud2 field 't' has "
                                  f"{int(np.count_nonzero(~np.isfinite(tf)))} NaN/Inf values: per-point "
                                  f"time ignored (no motion compensation, stamp used for matching)"))
        elif tf.size and (float(tf.min()) < -MAX_SCAN_TIME or float(tf.max()) > MAX_SCAN_TIME):
            notes.append(Rejected(Reason.OUT_OF_RANGE, f"PointCloud2 field 't' spans "
                                  f"{float(tf.min()):.6g}..{float(tf.max()):.6g} s, not offsets within a "
                                  f"scan (|t| <= {MAX_SCAN_TIME:g} s): per-point time ignored"))
        else:
            out["t"] = t
    if bad:
        out = {k: np.ascontiguousarray(v[finite]) for k, v in out.items()}
    st, s = _stamp(msg)
    return CloudData(st, s, msg.header.frame_id, out, bad, notes)


TRANSPORTS = ("raw", "compressed", "compressedDepth")


def transport_topic(topic: str, transport: str) -> tuple[str, type]:
    """Where and as what an image arrives through `transport`: raw on `topic` as an Image,
    compressed / compressedDepth on <topic>/<transport> as a CompressedImage."""
    if transport == "raw":
        return topic, Image
    return f"{topic.rstrip('/')}/{transport}", CompressedImage


def undecoded(msg: CompressedImage) -> CompressedImage:
    """A compressed image kept undecoded until it is used (a node that processes only the
    newest of many frames decodes only that one); an empty one is rejected here."""
    if not len(msg.data):
        raise Rejected(Reason.EMPTY, f"CompressedImage ({msg.format!r}) has 0 bytes")
    return msg


def image_from(msg: Image | CompressedImage, transport: str) -> Image:
    """The Image a message carries: itself (raw), or decoded from image_transport's layout."""
    return msg if transport == "raw" else decompressed(msg, transport)


@dataclass
class HeldImage:
    """An image checked at the boundary (header or size, and stamp) whose pixels are read when
    first used (`InputGate.pixels`): a node that uses one frame in three converts or decodes
    only that one. `msg` is dropped once read; `array` None after that means rejected."""

    stamp_s: float
    msg: Image | CompressedImage | None
    array: np.ndarray | None = None


def decompressed(msg: CompressedImage, transport: str) -> Image:
    """An image_transport compressed / compressedDepth message -> the Image it carries (same
    header), decoded as the plugins define it (core/compressed.py); Rejected when corrupt."""
    from depth_ai_nodes.core import compressed

    if transport == "compressedDepth":
        encoding, arr = compressed.decode_compressed_depth(msg.format, msg.data)
    else:
        encoding, arr = compressed.decode_compressed(msg.format, msg.data)
    return conv.array_to_image(arr, encoding, header=msg.header)


CLOUD_TRANSPORTS = ("raw", "zstd", "zlib")   # point_cloud_transport's names (core.cloud_compression)


@dataclass
class DecompressedCloud:
    """A CompressedPointCloud2 with its points decompressed: what `cloud` reads of a PointCloud2."""

    header: Any
    height: int
    width: int
    fields: Any
    is_bigendian: bool
    point_step: int
    row_step: int
    data: bytes
    is_dense: bool


def decompressed_cloud(msg: Any, transport: str) -> DecompressedCloud:
    """A point_cloud_transport zstd / zlib message -> its PointCloud2 fields and points, decoded
    as the plugins define it (core/cloud_compression.py); Rejected when corrupt or when `format`
    names another plugin."""
    from depth_ai_nodes.core import cloud_compression

    if msg.format != transport:
        raise Rejected(Reason.UNSUPPORTED, f"CompressedPointCloud2 on the {transport} topic has format "
                       f"{msg.format!r}")
    size = cloud_compression.expected_size(msg.height, msg.width, msg.point_step, msg.row_step)
    data = cloud_compression.decode(msg.format, memoryview(msg.compressed_data), size)
    return DecompressedCloud(msg.header, int(msg.height), int(msg.width), msg.fields, bool(msg.is_bigendian),
                             int(msg.point_step), int(msg.row_step), data, bool(msg.is_dense))


def twist(msg: Odometry | TwistStamped) -> TwistData:
    """Odometry (twist of child_frame_id) or TwistStamped (of header.frame_id), finite and
    within MAX_SPEED / MAX_ANGULAR_RATE."""
    if isinstance(msg, Odometry):
        tw, body = msg.twist.twist, msg.child_frame_id
    else:
        tw, body = msg.twist, msg.header.frame_id
    v = np.array([tw.linear.x, tw.linear.y, tw.linear.z], dtype=np.float64)
    w = np.array([tw.angular.x, tw.angular.y, tw.angular.z], dtype=np.float64)
    kind = type(msg).__name__
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
        raise Rejected(Reason.NON_FINITE, f"{kind} twist has NaN/Inf ({v.tolist()}, {w.tolist()})")
    if float(np.linalg.norm(v)) > MAX_SPEED or float(np.linalg.norm(w)) > MAX_ANGULAR_RATE:
        raise Rejected(Reason.OUT_OF_RANGE, f"{kind} twist |v| {np.linalg.norm(v):.4g} m/s, |w| "
                       f"{np.linalg.norm(w):.4g} rad/s (limits {MAX_SPEED:g} m/s, {MAX_ANGULAR_RATE:g} rad/s)")
    _, s = _stamp(msg)
    return TwistData(s, v, w, body)


def extrinsics(msg: Any) -> np.ndarray:
    """depth_ai_nodes/Extrinsics (rotation column-major, p_child = R p_frame + t) -> 4x4,
    finite with an orthonormal rotation of determinant +1."""
    rot = np.asarray(msg.rotation, dtype=np.float64)
    trans = np.asarray(msg.translation, dtype=np.float64)
    if rot.size != 9 or trans.size != 3:
        raise Rejected(Reason.MALFORMED, f"Extrinsics needs 9 rotation and 3 translation numbers; got "
                       f"{rot.size} and {trans.size}")
    if not (np.all(np.isfinite(rot)) and np.all(np.isfinite(trans))):
        raise Rejected(Reason.NON_FINITE, "Extrinsics has NaN/Inf")
    r = rot.reshape(3, 3).T
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
        raise Rejected(Reason.OUT_OF_RANGE, f"Extrinsics {msg.header.frame_id} -> {msg.child_frame_id}: "
                       f"rotation is not orthonormal with determinant +1")
    if float(np.linalg.norm(trans)) > 1e4:
        raise Rejected(Reason.OUT_OF_RANGE, f"Extrinsics translation {np.linalg.norm(trans):.3g} m")
    return conv.msg_to_transform(msg).matrix()


def transform(msg: Any) -> Any:
    """geometry_msgs/TransformStamped -> RigidTransform (p_parent = T p_child): finite, a
    quaternion of (about) unit norm, two different non-empty frame ids."""
    t, r = msg.transform.translation, msg.transform.rotation
    xyz = np.array([t.x, t.y, t.z], dtype=np.float64)
    q = np.array([r.x, r.y, r.z, r.w], dtype=np.float64)
    where = f"transform {msg.header.frame_id!r} -> {msg.child_frame_id!r}"
    if not msg.header.frame_id or not msg.child_frame_id or msg.header.frame_id == msg.child_frame_id:
        raise Rejected(Reason.MALFORMED, f"{where}: frame ids must be two different non-empty names")
    if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(q))):
        raise Rejected(Reason.NON_FINITE, f"{where} has NaN/Inf")
    if abs(float(np.linalg.norm(q)) - 1.0) > 0.01:
        raise Rejected(Reason.OUT_OF_RANGE, f"{where}: quaternion norm {np.linalg.norm(q):.4g} (must be 1)")
    return conv.tf_to_transform(msg)


# --- the node side ----------------------------------------------------------------------------
T = TypeVar("T")


class InputGate:
    """Counts, logs and reports rejected inputs for one node; applies time sanity per stream.

    `read(stream, reader, msg)` returns the reader's data or None (rejected: counted, logged
    once per reason per log_period_s with the latest detail, shown in /diagnostics under
    "<node>: inputs"). Thread-safe: callbacks and workers may both call it."""

    def __init__(self, node: Node, diag: Diagnostics, policy: StampPolicy | None = None,
                 log_period_s: float = 5.0) -> None:
        self._node = node
        self._diag = diag
        self.guard = StampGuard(policy or StampPolicy())
        self.log_period_s = log_period_s
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {r.value: 0 for r in Reason}
        self.by_stream: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._latest: dict[str, str] = {}
        self._last_reject = -math.inf
        self.resets: dict[str, int] = {}
        self.gaps: dict[str, SequenceGaps] = {}
        self.superseded_by: dict[str, int] = {}
        self._diag.set("inputs", OK, "no input rejected", **self._values())
        node.create_timer(1.0, self.flush)

    def counted(self, topic: str, callback: Callable[[Any], None]) -> WithInfo:
        """A subscription callback that first counts what was lost before it on `topic`
        (publisher sequence gaps: dropped in transit or overwritten in a full history)."""
        def with_info(msg: Any, info: Any) -> None:
            self.count_gaps(topic, info)
            callback(msg)
        return WithInfo(with_info)

    def subscribe(self, typ: type, topic: str, callback: Callable[[Any], None], qos: Any,
                  newest_only: bool = False) -> Any:
        """A subscription whose callback counts sequence gaps first (`counted`). newest_only:
        each call first takes what is already queued behind its message and hands on only the
        newest; the older ones are counted as superseded (`superseded(topic)`), never decoded.
        For a stream of which the node uses only the latest (the fusion node's scans): under
        overload its reader's history would otherwise become latency (depth x period) and CPU
        spent decoding what is dropped anyway. Safe with the single-threaded executors the
        nodes spin (one thread takes from the subscription); under the EventsExecutor, which
        takes one message per event, the events of the messages drained here find nothing
        and call nothing."""
        if not newest_only:
            return self._node.create_subscription(typ, topic, self.counted(topic, callback), qos)
        bound: list[Any] = []

        def newest(msg: Any, info: Any) -> None:
            self.count_gaps(topic, info)
            skipped = 0
            while bound and skipped < NEWEST_DRAIN_MAX:
                sub = bound[0]
                try:
                    with sub.handle:
                        taken = sub.handle.take_message(sub.msg_type, sub.raw)
                except Exception:  # the subscription is being destroyed (shutdown): keep this one
                    break
                if taken is None:
                    break
                msg, info = taken
                self.count_gaps(topic, info)
                skipped += 1
            if skipped:
                with self._lock:
                    self.superseded_by[topic] = self.superseded_by.get(topic, 0) + skipped
                    values = self._values()
                self._diag.update("inputs", **values)
            callback(msg)

        sub = self._node.create_subscription(typ, topic, WithInfo(newest), qos)
        bound.append(sub)
        return sub

    def superseded(self, topic: str) -> int:
        """Messages of `topic` taken but never decoded: a newer one was already queued."""
        with self._lock:
            return self.superseded_by.get(topic, 0)

    def check_image(self, stream: str, msg: Image | CompressedImage, encodings: Sequence[str]
                    ) -> tuple[Image | CompressedImage | None, bool]:
        """The boundary's cheap part for an image used later, or never: a raw one's header
        against its buffer (a view, no pixel copy), a compressed one's size, either's stamp.
        (msg, whether the stream's timeline restarted), or (None, False) when rejected;
        `decode_image` reads its pixels."""
        if isinstance(msg, CompressedImage):
            ok, reset = self.read_stamped(stream, undecoded, msg)
        else:
            ok, reset = self.read_stamped(stream, image, msg, encodings, IMAGE_WHAT.get(stream, f"{stream} image"))
        return (msg if ok is not None else None), reset

    def decode_image(self, stream: str, reader: Callable[..., ImageData], msg: Image | CompressedImage,
                     transport: str, *args: Any) -> ImageData | None:
        """reader(the Image `msg` carries, *args): decoded now when compressed; None when
        rejected (a corrupt image: counted and reported under `stream`)."""
        return self.read(stream, lambda m: reader(image_from(m, transport), *args), msg, stamped=False)

    def hold_image(self, stream: str, msg: Image | CompressedImage, encodings: Sequence[str]
                   ) -> tuple[HeldImage | None, bool]:
        """`check_image` as a HeldImage (pixels read on first use), with the restart flag."""
        ok, reset = self.check_image(stream, msg, encodings)
        return (HeldImage(conv.stamp_to_s(msg.header.stamp), ok) if ok is not None else None), reset

    def pixels(self, stream: str, held: HeldImage, reader: Callable[..., ImageData], transport: str,
               *args: Any) -> np.ndarray | None:
        """The held image's pixels, read once (an image used for several outputs is decoded,
        and a corrupt one counted, once); None when rejected."""
        if held.array is None and held.msg is not None:
            data = self.decode_image(stream, reader, held.msg, transport, *args)
            held.array, held.msg = (data.array if data is not None else None), None
        return held.array

    def cloud_transport(self, stream: str, topic: str, transport: str, callback: Callable[[Any], None]
                        ) -> tuple[str, type, Callable[[Any], None]]:
        """(topic, message type, callback) to subscribe to a point cloud through `transport`:
        raw as is; zstd / zlib (point_cloud_transport) on <topic>/<transport>, decompressed here
        and handed on as a PointCloud2-like DecompressedCloud (a corrupt one is rejected and
        counted). ImportError when point_cloud_interfaces is missing."""
        if transport == "raw":
            return topic, PointCloud2, callback
        from depth_ai_nodes.core import cloud_compression

        cloud_compression.require(transport)
        return (f"{topic.rstrip('/')}/{transport}", conv.compressed_point_cloud2_type(),
                self._decoding(stream, decompressed_cloud, transport, callback))

    def _decoding(self, stream: str, reader: Callable[[Any, str], Any], transport: str,
                  callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """A subscription callback that decodes each message with reader(msg, transport) at the
        boundary (a corrupt one is rejected and counted) and hands on what it gives."""
        def decode(msg: Any) -> None:
            data = self.read(stream, reader, msg, transport, stamped=False)
            if data is not None:
                callback(data)
        return decode

    def count_gaps(self, stream: str, info: Any) -> int:
        """Messages of `stream` lost upstream (publisher sequence numbers from rclpy's
        MessageInfo; 0 where the middleware gives none)."""
        try:
            seq = info.get("publication_sequence_number")
            gid = info.get("publisher_gid")
            source = bytes(gid.get("data", b"")) if isinstance(gid, dict) else repr(gid)
        except AttributeError:
            return 0
        with self._lock:  # callbacks and workers both touch these: read them under the lock
            gap = self.gaps.setdefault(stream, SequenceGaps()).update(source, seq)
            values = self._values() if gap else None
        if values is not None:
            self._diag.update("inputs", **values)
        return gap

    def missing(self, stream: str) -> int:
        """Messages of `stream` lost before the node took them."""
        with self._lock:
            g = self.gaps.get(stream)
            return g.missing if g is not None else 0

    def read(self, stream: str, reader: Callable[..., T], msg: Any, *args: Any,
             stamped: bool = True) -> T | None:
        """reader(msg, *args), then (stamped) time sanity on its stamp; None when rejected."""
        if stamped:
            return self.read_stamped(stream, reader, msg, *args)[0]
        try:
            return reader(msg, *args)
        except Rejected as err:
            self.reject(stream, err)
            return None

    def read_stamped(self, stream: str, reader: Callable[..., T], msg: Any, *args: Any
                     ) -> tuple[T | None, bool]:
        """(reader(msg, *args), whether the stream's timeline restarted with this stamp), or
        (None, False) when the message or its stamp is rejected. On a restart the caller clears
        what it buffered of `stream`."""
        try:
            data = reader(msg, *args)
            return data, self.check_stamp(stream, msg.header.stamp)
        except Rejected as err:
            self.reject(stream, err)
            return None, False

    def check_stamp(self, stream: str, stamp: Any) -> bool:
        """Raises Rejected(BAD_STAMP); True when the stream's timeline restarted (time went back
        by more than the policy's reset_after_s): the caller clears what it buffered."""
        now = self._node.get_clock().now().nanoseconds * 1e-9
        with self._lock:
            reset = self.guard.check(stream, conv.stamp_to_s(stamp), now)
            if reset:
                self.resets[stream] = self.resets.get(stream, 0) + 1
        if reset:
            self._node.get_logger().warn(f"{stream}: time went back by more than "
                                         f"{self.guard.policy.reset_after_s:g} s; its history is reset "
                                         f"(a bag looped, a sensor restarted, or a stamp was far ahead)",
                                         throttle_duration_sec=5.0)
        return reset

    def reject(self, stream: str, err: Rejected, used: bool = False) -> None:
        """Count and report one rejection (used=True: a part of the input was ignored, the rest used)."""
        now = time.monotonic()
        key = err.reason.value
        text = f"{stream}: {err.detail}" + (" (rest of the message used)" if used else "")
        with self._lock:
            self.counts[key] += 1
            self.by_stream[stream] = self.by_stream.get(stream, 0) + 1
            self._latest[key] = text
            self._last_reject = now
            due = now - self._last_log.get(key, -math.inf) >= self.log_period_s
            if due:
                more = self._suppressed.pop(key, 0)
                self._last_log[key] = now
            else:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
            values = self._values()
        if due:
            suffix = f" [{more} more {key} input(s) since the last report]" if more else ""
            self._node.get_logger().error(f"input rejected ({key}): {text}{suffix}")
        self._diag.set("inputs", WARN, f"rejected ({key}): {text}", **values)

    def flush(self) -> None:
        """Log what was suppressed once its period has passed; calm the status after a quiet spell."""
        now = time.monotonic()
        lines = []
        with self._lock:
            for key, n in list(self._suppressed.items()):
                if now - self._last_log.get(key, -math.inf) >= self.log_period_s:
                    lines.append(f"input rejected ({key}): {self._latest[key]} [{n} {key} input(s) "
                                 f"in the last {self.log_period_s:g} s]")
                    self._last_log[key] = now
                    del self._suppressed[key]
            quiet = now - self._last_reject > self.log_period_s
            values = self._values()
        for line in lines:
            self._node.get_logger().error(line)
        if quiet:
            total = sum(self.counts.values())
            self._diag.set("inputs", OK, "no input rejected" if total == 0 else
                           f"{total} input(s) rejected earlier; none in the last {self.log_period_s:g} s",
                           **values)

    def _values(self) -> dict[str, object]:
        vals: dict[str, object] = {f"rejected {k}": v for k, v in self.counts.items()}
        vals["rejected total"] = sum(self.counts.values())
        vals.update({f"rejected from {s}": n for s, n in sorted(self.by_stream.items())})
        vals.update({f"timeline resets {s}": n for s, n in sorted(self.resets.items())})
        lost = {s: g.missing for s, g in sorted(self.gaps.items()) if g.missing}
        vals["lost before the node (sequence gaps)"] = sum(lost.values())
        vals.update({f"lost on {s}": n for s, n in lost.items()})
        if self.superseded_by:
            vals["superseded (a newer one was queued)"] = sum(self.superseded_by.values())
            vals.update({f"superseded on {s}": n for s, n in sorted(self.superseded_by.items())})
        return vals
