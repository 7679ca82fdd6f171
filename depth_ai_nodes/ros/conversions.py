"""ROS messages <-> numpy and core types. The ONLY place such conversions live.

Fast idioms (see ../shared/notes/platform-facts.md): write ``msg.data = message_bytes(arr)``, one
copy into the array.array the message keeps (assigning a numpy array copies element by element,
~100x slower; ``arr.tobytes()`` is a second full copy, because the setter copies bytes into an
array.array again); read with ``np.frombuffer(msg.data)``, a zero-copy view. The layout rules themselves are ROS-free in ``core.image_codec`` and
``core.pointcloud``; this module only moves fields between messages and those functions.
"""
from __future__ import annotations

import array
from typing import Any, Iterable, Mapping

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from depth_ai_nodes.core import image_codec, pointcloud
from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.pointcloud import FieldSpec
from depth_ai_nodes.core.transforms import RigidTransform

__all__ = ["stamp_to_ns", "ns_to_stamp", "make_header", "image_to_array", "array_to_image",
           "camera_info_to_model", "model_to_camera_info", "pointcloud2_to_fields", "fields_to_pointcloud2",
           "extrinsics_to_msg", "msg_to_transform", "transform_to_tf", "tf_to_transform",
           "depth_to_pointcloud2", "rows_to_pointcloud2", "cloud_rows", "stamp_to_s", "image_to_rgb_array"]


# --- time --------------------------------------------------------------------------------

def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_to_s(stamp: Time) -> float:
    """builtin_interfaces/Time -> float seconds (for matching and latency, not for keys)."""
    return stamp.sec + stamp.nanosec * 1e-9


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"a ROS stamp cannot be negative; got {ns} ns")
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def make_header(header: Header | None = None, frame_id: str | None = None, stamp: Time | int | None = None
                ) -> Header:
    """A Header from an optional template, overriding frame_id and stamp (Time or ns)."""
    h = Header()
    if header is not None:
        h.stamp = header.stamp
        h.frame_id = header.frame_id
    if stamp is not None:
        h.stamp = ns_to_stamp(stamp) if isinstance(stamp, (int, np.integer)) else stamp
    if frame_id is not None:
        h.frame_id = frame_id
    return h


# --- images --------------------------------------------------------------------------------

def image_to_array(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> numpy, zero-copy view for little-endian data (honours step padding).

    Raises image_codec.ImageFormatError naming the problem (unknown encoding, bad step/size).
    """
    return image_codec.decode(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def image_to_rgb_array(msg: Image) -> np.ndarray:
    """Like image_to_array, with colour channels as R, G, B (zero-copy views: bgr8 is a
    reversed-channel view, rgba8/bgra8 drop alpha by fancy view); mono and depth unchanged."""
    arr = image_to_array(msg)
    if msg.encoding in ("bgr8", "8UC3"):
        return arr[:, :, ::-1]
    if msg.encoding == "rgba8":
        return arr[:, :, :3]
    if msg.encoding == "bgra8":
        return arr[:, :, 2::-1]
    return arr


def message_bytes(a: np.ndarray) -> array.array:
    """A uint8[] message field's value from an array, in one copy: the generated setters keep an
    array.array('B') as it is and copy anything else into one, so ``tobytes()`` would copy twice
    (measured 0.19 vs 0.38 ms for a 2.8 MB cloud)."""
    out = array.array("B")
    if a.size:  # (a view with a zero in its shape cannot be cast)
        out.frombytes(memoryview(np.ascontiguousarray(a)).cast("B"))
    return out


def array_to_image(arr: np.ndarray, encoding: str, header: Header | None = None, frame_id: str | None = None,
                   stamp: Time | int | None = None, out: Image | None = None) -> Image:
    """numpy -> sensor_msgs/Image (tight rows, little-endian).

    With ``out`` (a message this function filled before, e.g. last frame's, already published:
    publish() copies), its data buffer is overwritten in place when the size matches: one copy
    of the pixels and no allocation, instead of ``tobytes()`` plus the copy the data setter makes.
    """
    a = image_codec.encode_array(arr, encoding)
    msg = Image() if out is None else out
    msg.header = make_header(header, frame_id, stamp)
    msg.height, msg.width = a.shape[0], a.shape[1]
    msg.step = a.shape[1] * image_codec.ENCODINGS[encoding].pixel_bytes
    msg.encoding = encoding
    msg.is_bigendian = 0
    data = msg.data
    if out is not None and len(data) == a.nbytes:
        np.copyto(np.frombuffer(data, a.dtype).reshape(a.shape), a)
    else:
        msg.data = message_bytes(a)
    return msg


# --- camera info ---------------------------------------------------------------------------

def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """sensor_msgs/CameraInfo -> CameraModel (K, D, distortion_model, frame_id).

    A CameraInfo with binning or an ROI describes a sub-sampled image: the model is adjusted to
    the image actually published (REP-104).
    """
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not k[0, 0] > 0:
        raise ValueError(f"camera_info for {msg.header.frame_id!r} is uncalibrated (K[0] = {k[0, 0]})")
    d = np.asarray(msg.d, dtype=np.float64)
    model = CameraModel(width=msg.width, height=msg.height, K=k, D=d,
                        distortion_model=msg.distortion_model or "plumb_bob", frame_id=msg.header.frame_id)
    roi = msg.roi
    if roi.width and roi.height and (roi.width, roi.height) != (msg.width, msg.height):
        model = model.cropped(roi.x_offset, roi.y_offset, roi.width, roi.height)
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if bx > 1 or by > 1:
        kk = model.K.copy()
        kk[0, :] /= bx
        kk[1, :] /= by
        model = model.copy(K=kk, width=model.width // bx, height=model.height // by)
    return model


def model_to_camera_info(model: CameraModel, header: Header | None = None, frame_id: str | None = None,
                         stamp: Time | int | None = None) -> CameraInfo:
    """CameraModel -> sensor_msgs/CameraInfo: K, D, R = identity, P = [K | 0], no binning, no ROI."""
    msg = CameraInfo()
    msg.header = make_header(header, model.frame_id if frame_id is None and header is None else frame_id, stamp)
    msg.width, msg.height = model.width, model.height
    msg.distortion_model = model.distortion_model if model.distortion_model != "none" else "plumb_bob"
    n = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}.get(msg.distortion_model, 5)
    msg.d = [float(v) for v in model.coeffs(n)]
    msg.k = [float(v) for v in model.K.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = model.K
    msg.p = [float(v) for v in p.ravel()]
    msg.binning_x = msg.binning_y = 0
    return msg


# --- point clouds --------------------------------------------------------------------------

def pointcloud2_to_fields(msg: PointCloud2, names: Iterable[str] | None = None, drop_invalid: bool = False
                          ) -> dict[str, np.ndarray]:
    """sensor_msgs/PointCloud2 -> {name: array} read by name and offset (any point_step).

    Organized clouds come back flat (N = height*width); reshape with (msg.height, msg.width).
    """
    specs = [FieldSpec(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
    n = int(msg.width) * int(msg.height)
    if msg.height > 1 and msg.row_step != msg.width * msg.point_step:
        # rows padded: gather rows first (rare; keeps the common path zero-copy)
        raw = np.frombuffer(msg.data, np.uint8)
        if raw.size < msg.row_step * msg.height:
            raise pointcloud.PointCloudFormatError(f"point cloud data has {raw.size} bytes; row_step*height = "
                                                   f"{msg.row_step * msg.height}")
        raw = raw[: msg.row_step * msg.height].reshape(msg.height, msg.row_step)[:, : msg.width * msg.point_step]
        data: Any = np.ascontiguousarray(raw).reshape(-1)
    else:
        data = msg.data
    return pointcloud.unpack(specs, msg.point_step, data, names, n, bool(msg.is_bigendian), drop_invalid)


def fields_to_pointcloud2(fields: Mapping[str, np.ndarray], header: Header | None = None,
                          organized_shape: tuple[int, int] | None = None, frame_id: str | None = None,
                          stamp: Time | int | None = None, point_step: int | None = None,
                          drop_invalid: bool = False) -> PointCloud2:
    """{name: array} -> sensor_msgs/PointCloud2 (little-endian, fields in the given order).

    ``organized_shape`` (height, width) makes an organized cloud (then points are never dropped);
    otherwise height = 1. ``is_dense`` is True when no point has a non-finite x/y/z.
    """
    if organized_shape is not None:
        drop_invalid = False
    packed = pointcloud.pack(fields, point_step, drop_invalid)
    specs, step, data = packed
    n, dense = packed.count, packed.is_dense
    msg = PointCloud2()
    msg.header = make_header(header, frame_id, stamp)
    if organized_shape is not None:
        h, w = int(organized_shape[0]), int(organized_shape[1])
        if h * w != n:
            raise ValueError(f"organized_shape {h}x{w} does not hold {n} points")
    else:
        h, w = 1, n
    msg.height, msg.width = h, w
    msg.fields = [PointField(name=s.name, offset=s.offset, datatype=s.datatype, count=s.count) for s in specs]
    msg.is_bigendian = False
    msg.point_step = step
    msg.row_step = step * w
    msg.data = data
    msg.is_dense = dense
    return msg


def compressed_point_cloud2_type() -> type:
    """point_cloud_interfaces/CompressedPointCloud2: a ROS install's, or the copy our pip install
    builds from vendor/ (PyPI has no wheel for it)."""
    try:
        from point_cloud_interfaces.msg import CompressedPointCloud2
    except ImportError as err:
        raise ImportError("point_cloud_interfaces is not installed (compressed point clouds need it): "
                          "`sudo apt install ros-$ROS_DISTRO-point-cloud-interfaces` on a ROS install; "
                          "pip installs of depth_ai_nodes build it") from err
    return CompressedPointCloud2


def compress_pointcloud2(msg: PointCloud2, fmt: str, level: int, resolution: float = 0.0) -> Any:
    """PointCloud2 -> CompressedPointCloud2 as point_cloud_transport's `fmt` plugin writes it:
    every field but `data` copied, `data` compressed whole (core.cloud_compression). With a
    `resolution` (m) > 0, x, y, z are first rounded to it (lossy, within half of it) when they
    are little-endian float32, as every cloud of lidar_node is; other layouts stay lossless."""
    from depth_ai_nodes.core import cloud_compression

    out = compressed_point_cloud2_type()()
    out.header = msg.header
    out.height, out.width = msg.height, msg.width
    out.fields = msg.fields
    out.is_bigendian = msg.is_bigendian
    out.point_step, out.row_step = msg.point_step, msg.row_step
    data: Any = memoryview(msg.data)
    if resolution > 0:
        xyz = [f.offset for f in msg.fields if f.name in ("x", "y", "z") and f.datatype == PointField.FLOAT32]
        if len(xyz) == 3 and not msg.is_bigendian:
            data = cloud_compression.round_coordinates(data, msg.point_step, tuple(xyz), resolution)
    out.compressed_data = cloud_compression.encode(data, fmt, level)
    out.is_dense = msg.is_dense
    out.format = fmt
    return out


def depth_to_pointcloud2(depth: np.ndarray, model: CameraModel, depth_scale: float = 0.001,
                         color: np.ndarray | None = None, color_model: CameraModel | None = None,
                         depth_to_color: RigidTransform | None = None, stride: int = 1, organized: bool = False,
                         header: Header | None = None, frame_id: str | None = None,
                         stamp: Time | int | None = None) -> PointCloud2:
    """Depth (+ colour) image -> PointCloud2 with x, y, z (float32) [+ rgb packed float32].

    Like realsense-ros's ``depth/color/points``: points in the depth optical frame; colour looked
    up by projecting into the colour camera when ``color_model`` is given.
    """
    if frame_id is None and header is None:
        frame_id = model.frame_id
    cloud = pointcloud.depth_to_cloud(depth, model, stride, organized, depth_scale, color, color_model,
                                      depth_to_color)
    shape = (-(-model.height // int(stride)), -(-model.width // int(stride))) if organized else None
    return rows_to_pointcloud2(cloud, ("x", "y", "z", "rgb")[: cloud.shape[1]], header, frame_id, stamp, shape,
                               is_dense=None if organized else True)  # unorganized: only valid points


def cloud_rows(n: int, columns: int, reuse: PointCloud2 | None = None) -> tuple[PointCloud2, np.ndarray]:
    """A PointCloud2 whose data holds `n` rows of `columns` float32, and those rows as a writable
    (n, columns) numpy view of it: a kernel writes the points straight into the message, and
    ``rows_to_pointcloud2(rows, ..., out=msg)`` publishes them with no copy (2.8 MB per KITTI
    scan otherwise). `reuse`: the message returned last time, already published (publish()
    copies): its buffer is shrunk or grown in place instead of allocating one per cloud."""
    need = int(n) * int(columns) * 4
    msg, buf = None, None
    if reuse is not None:
        buf = reuse.data
        try:
            if len(buf) < need:
                buf.frombytes(bytes(need - len(buf)))
            elif len(buf) > need:
                del buf[need:]
            msg = reuse
        except BufferError:  # a view of the old rows is still alive: leave it alone
            buf = None
    if msg is None:
        msg = PointCloud2()
        buf = array.array("B", bytes(need))
        msg.data = buf
    if not need:
        return msg, np.empty((int(n), int(columns)), np.float32)
    return msg, np.frombuffer(buf, np.float32).reshape(int(n), int(columns))


def _holds(msg: PointCloud2, rows: np.ndarray) -> bool:
    """True when `rows` is exactly the data buffer of `msg` (from cloud_rows)."""
    data = msg.data
    if not isinstance(data, array.array) or len(data) != rows.nbytes or not rows.flags.c_contiguous:
        return False
    return bool(len(data) == 0 or data.buffer_info()[0] == rows.ctypes.data)


def _float32_fields(fields: list, names: list[str]) -> bool:
    """True when `fields` are exactly `names` as consecutive single float32 fields from offset 0."""
    return len(fields) == len(names) and all(
        f.name == n and f.offset == 4 * i and f.datatype == PointField.FLOAT32 and f.count == 1
        for i, (f, n) in enumerate(zip(fields, names)))


def rows_to_pointcloud2(rows: np.ndarray, names: Iterable[str], header: Header | None = None,
                        frame_id: str | None = None, stamp: Time | int | None = None,
                        organized_shape: tuple[int, int] | None = None, is_dense: bool | None = None,
                        out: PointCloud2 | None = None) -> PointCloud2:
    """(N, F) float32 rows -> PointCloud2 with float32 fields ``names`` at offsets 0, 4, 8, ...

    The fast path for kernels that already write the point layout: one copy, no per-field
    structured copy (``fields_to_pointcloud2`` is the general one), and no copy at all when
    the rows were written into ``out`` (see cloud_rows). ``is_dense`` is computed from x, y, z
    unless the caller knows it.
    """
    names = list(names)
    in_place = out is not None and _holds(out, rows)
    r = rows if in_place else np.ascontiguousarray(rows, dtype=np.float32)
    if r.ndim != 2 or r.shape[1] != len(names) or r.dtype != np.float32:
        raise ValueError(f"rows must be (N, {len(names)}) float32 for fields {names}; got {r.dtype} {r.shape}")
    msg = out if out is not None else PointCloud2()
    msg.header = make_header(header, frame_id, stamp)
    if organized_shape is not None:
        h, w = int(organized_shape[0]), int(organized_shape[1])
        if h * w != r.shape[0]:
            raise ValueError(f"organized_shape {h}x{w} does not hold {r.shape[0]} points")
    else:
        h, w = 1, r.shape[0]
    msg.height, msg.width = h, w
    if not _float32_fields(msg.fields, names):  # a reused message keeps its field list
        msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                      for i, n in enumerate(names)]
    msg.is_bigendian = False
    msg.point_step = 4 * len(names)
    msg.row_step = msg.point_step * w
    if not in_place:
        msg.data = message_bytes(r)  # the array IS the point layout
    if is_dense is None:
        xyz = [names.index(k) for k in ("x", "y", "z") if k in names]
        cols = r[:, :3] if xyz == [0, 1, 2] else r[:, xyz]
        is_dense = bool(np.isfinite(cols).all()) if xyz else True
    msg.is_dense = bool(is_dense)
    return msg


# --- transforms --------------------------------------------------------------------------

def extrinsics_to_msg(T: RigidTransform, from_frame: str, to_frame: str, stamp: Time | int | None = None) -> Any:
    """RigidTransform (p_to = R p_from + t) -> depth_ai_nodes/Extrinsics (rotation column-major)."""
    from depth_ai_nodes.msg import Extrinsics

    T = T if isinstance(T, RigidTransform) else RigidTransform(np.asarray(getattr(T, "matrix", lambda: T)()))
    rot, trans = T.to_rs_extrinsics()
    msg = Extrinsics()
    msg.header = make_header(None, from_frame, stamp)
    msg.child_frame_id = to_frame
    msg.rotation = rot
    msg.translation = trans
    return msg


def msg_to_transform(msg: Any) -> RigidTransform:
    """depth_ai_nodes/Extrinsics (or realsense2_camera_msgs/Extrinsics) -> RigidTransform."""
    return RigidTransform.from_rs_extrinsics(list(msg.rotation), list(msg.translation))


def transform_to_tf(T: RigidTransform, parent: str, child: str, stamp: Time | int | None = None) -> TransformStamped:
    """RigidTransform giving the CHILD frame's pose in PARENT (p_parent = T p_child) -> TransformStamped."""
    xyz, q = T.to_xyz_quat()
    msg = TransformStamped()
    msg.header = make_header(None, parent, stamp)
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in xyz)
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = (float(v) for v in q)
    return msg


def tf_to_transform(msg: TransformStamped) -> RigidTransform:
    """TransformStamped -> RigidTransform (p_parent = T p_child)."""
    t, r = msg.transform.translation, msg.transform.rotation
    return RigidTransform.from_xyz_quat((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))
