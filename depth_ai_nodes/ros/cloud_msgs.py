"""PointCloud2 <-> numpy for the LiDAR nodes: any layout in, validated with a reason; our
layouts out. Zero-copy reads (strided views into msg.data), `msg.data = bytes` writes.

Reading takes fields by NAME and OFFSET with any point_step/row_step, as the issue asks
(Ouster, Velodyne, Livox and PCL clouds all lay fields out differently), and rejects
malformed clouds with a sentence saying what is wrong instead of raising deep in numpy.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

# PointField datatype -> numpy dtype (little endian; big endian clouds are byte-swapped)
DTYPES = {PointField.INT8: np.int8, PointField.UINT8: np.uint8, PointField.INT16: np.int16,
          PointField.UINT16: np.uint16, PointField.INT32: np.int32, PointField.UINT32: np.uint32,
          PointField.FLOAT32: np.float32, PointField.FLOAT64: np.float64}
NP_TO_POINTFIELD = {np.dtype(v): k for k, v in DTYPES.items()}


class CloudError(ValueError):
    """A PointCloud2 we cannot use; str() is the reason for logs and diagnostics."""


def read_cloud(msg: PointCloud2, wanted: Sequence[str] = ("x", "y", "z"),
               optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """{name: 1-D array of N = width*height} for `wanted` (required) and `optional` fields
    (absent ones skipped). Views into msg.data when the layout allows, copies otherwise."""
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    fields = {f.name: f for f in msg.fields}
    missing = [w for w in wanted if w not in fields]
    if missing:
        raise CloudError(f"missing field(s) {', '.join(missing)} (has: {', '.join(fields) or 'none'})")
    if n == 0:
        return {name: np.empty(0, np.float32) for name in wanted}
    if step <= 0:
        raise CloudError(f"bad point_step {step}")
    row_step = int(msg.row_step)
    if row_step < int(msg.width) * step:
        raise CloudError(f"bad row_step {row_step}: less than width {msg.width} x point_step {step}")
    data = msg.data
    size = len(data)
    need = (int(msg.height) - 1) * row_step + int(msg.width) * step
    if size < need:
        raise CloudError(f"short data: {size} bytes for {msg.width} x {msg.height} points "
                         f"(point_step {step}, row_step {row_step}) needs {need}")
    buf = np.frombuffer(data, dtype=np.uint8)
    if row_step == int(msg.width) * step:
        rows = buf[:n * step].reshape(n, step)
    else:  # padded rows: drop the padding (copy)
        rows = buf[:int(msg.height) * row_step].reshape(int(msg.height), row_step)[:, :int(msg.width) * step]
        rows = np.ascontiguousarray(rows).reshape(n, step)
    out: dict[str, np.ndarray] = {}
    for name in [*wanted, *[o for o in optional if o in fields and o not in wanted]]:
        f = fields[name]
        if f.datatype not in DTYPES:
            raise CloudError(f"field {name} has unknown datatype {f.datatype}")
        dt = np.dtype(DTYPES[f.datatype])
        if f.offset + dt.itemsize > step:
            raise CloudError(f"bad point_step {step}: field {name} at offset {f.offset} "
                             f"({dt.itemsize} bytes) does not fit")
        col = rows[:, f.offset:f.offset + dt.itemsize]
        if msg.is_bigendian:
            col = col[:, ::-1]
        if (f.offset % dt.itemsize == 0) and (step % dt.itemsize == 0) and not msg.is_bigendian:
            out[name] = col.view(dt).reshape(n)
        else:
            out[name] = np.ascontiguousarray(col).view(dt).reshape(n)
    return out


def layout(names: Sequence[str], dtypes: Sequence[np.dtype]) -> tuple[list[PointField], int]:
    """PointFields packed in order (each aligned to its size) and the point_step (4-aligned)."""
    fields, off = [], 0
    for name, dt in zip(names, dtypes):
        dt = np.dtype(dt)
        off = (off + dt.itemsize - 1) // dt.itemsize * dt.itemsize
        fields.append(PointField(name=name, offset=off, datatype=NP_TO_POINTFIELD[dt], count=1))
        off += dt.itemsize
    return fields, (off + 3) // 4 * 4


def cloud_msg(columns: dict[str, np.ndarray], frame_id: str, stamp=None,
              height: int = 1) -> PointCloud2:
    """A PointCloud2 from named 1-D columns of any PointField dtypes (structured copy)."""
    names = list(columns)
    fields, step = layout(names, [columns[n].dtype for n in names])
    n = int(columns[names[0]].shape[0]) if names else 0
    arr = np.zeros(n, dtype=np.dtype({"names": names, "formats": [columns[k].dtype for k in names],
                                      "offsets": [f.offset for f in fields], "itemsize": step}))
    for name in names:
        arr[name] = columns[name]
    return _msg(arr.tobytes(), fields, step, n, frame_id, stamp, height)


def float_rows_msg(rows: np.ndarray, names: Sequence[str], frame_id: str, stamp=None) -> PointCloud2:
    """A PointCloud2 from an (N, F) float32 array whose columns are `names` (no copy but
    tobytes): the fusion output path."""
    fields, step = layout(names, [np.float32] * len(names))
    return _msg(np.ascontiguousarray(rows, dtype=np.float32).tobytes(), fields, step,
                int(rows.shape[0]), frame_id, stamp, 1)


def _msg(data: bytes, fields, step: int, n: int, frame_id: str, stamp, height: int) -> PointCloud2:
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.height = height
    msg.width = n // height if height else n
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = step
    msg.row_step = step * msg.width
    msg.is_dense = False
    msg.data = data
    return msg
