"""librealsense's cheap depth filters in numpy, for sources that are not
pyrealsense2 frames (the synthetic scene). Live and playback sources use the
real librealsense filters (realsense.py); test_camera_playback checks these
against them pixel for pixel.
"""
from __future__ import annotations

import numpy as np


def decimated_size(width: int, height: int, magnitude: int) -> tuple[int, int]:
    """Output size of librealsense's decimation: floor(size / m), padded to a multiple of 4."""
    w, h = width // magnitude, height // magnitude
    return (w + 3) // 4 * 4, (h + 3) // 4 * 4


def decimate_depth(depth: np.ndarray, magnitude: int) -> np.ndarray:
    """librealsense decimation of Z16 depth: per m x m block, the lower median of
    the non-zero values (m <= 3) or their mean (m >= 4); 0 where none; padded."""
    m = int(magnitude)
    if m <= 1:
        return depth
    h, w = depth.shape[0] // m, depth.shape[1] // m
    blocks = depth[:h * m, :w * m].reshape(h, m, w, m).transpose(0, 2, 1, 3).reshape(h, w, m * m)
    valid = np.count_nonzero(blocks, axis=-1)
    if m <= 3:
        ordered = np.sort(blocks, axis=-1)  # zeros first
        idx = np.minimum((m * m - valid) + np.maximum(valid - 1, 0) // 2, m * m - 1)
        out = np.take_along_axis(ordered, idx[..., None], axis=-1)[..., 0]
    else:
        total = blocks.sum(axis=-1, dtype=np.uint32)
        out = (total // np.maximum(valid, 1)).astype(np.uint16)
    out = np.where(valid > 0, out, 0).astype(np.uint16)
    pw, ph = decimated_size(depth.shape[1], depth.shape[0], m)
    if (ph, pw) != out.shape:
        padded = np.zeros((ph, pw), dtype=np.uint16)
        padded[:h, :w] = out
        out = padded
    return out


def threshold_depth(depth: np.ndarray, scale_m: float, min_m: float, max_m: float) -> np.ndarray:
    """Zero depth outside [min_m, max_m] metres, compared in float32 metres like
    librealsense's threshold filter (so boundary pixels agree exactly)."""
    metres = depth.astype(np.float32) * np.float32(scale_m)
    keep = (metres >= np.float32(min_m)) & (metres <= np.float32(max_m))
    return np.where(keep, depth, 0).astype(np.uint16)
