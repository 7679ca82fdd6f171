"""Motion compensation (de-skewing) of a spinning LiDAR's points to one instant. ROS-free.

A spinning LiDAR fires each column at its own time while the robot moves, so one scan is
not a snapshot. Projecting it into a camera exposed at time T puts every point where the
sensor WAS when it fired, smeared by the motion. With per-point times t_i and the sensor's
twist xi = (v, w) (expressed in the LiDAR frame, constant over a scan), the sensor pose is
W(t) = W(T) exp(xi (t - T)), so the point in the LiDAR frame at T is

    p_T = exp(xi * (t_i - T)) p_i          (SE(3) exponential, exact for constant twist)

`twist_in_frame` converts an odometry twist given in another body frame (base_link) to the
LiDAR frame with the rigid mount. Static objects are then exact; objects that move
themselves stay where they were when hit (no way to know their motion).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _deskew_kernel(x, y, z, t, t_ref, v, w, ox, oy, oz):
    for i in range(x.shape[0]):
        dt = t[i] - t_ref
        rx, ry, rz = w[0] * dt, w[1] * dt, w[2] * dt
        th2 = rx * rx + ry * ry + rz * rz
        if th2 < 1e-12:
            a, b, c = 1.0, 0.5, 1.0 / 6.0
        else:
            th = math.sqrt(th2)
            a = math.sin(th) / th
            b = (1.0 - math.cos(th)) / th2
            c = (th - math.sin(th)) / (th2 * th)
        px, py, pz = x[i], y[i], z[i]
        # R p = p + a (r x p) + b r x (r x p)
        cx1 = ry * pz - rz * py
        cy1 = rz * px - rx * pz
        cz1 = rx * py - ry * px
        cx2 = ry * cz1 - rz * cy1
        cy2 = rz * cx1 - rx * cz1
        cz2 = rx * cy1 - ry * cx1
        # translation V (v dt), V = I + b [r]x + c [r]x^2
        ux, uy, uz = v[0] * dt, v[1] * dt, v[2] * dt
        dx1 = ry * uz - rz * uy
        dy1 = rz * ux - rx * uz
        dz1 = rx * uy - ry * ux
        dx2 = ry * dz1 - rz * dy1
        dy2 = rz * dx1 - rx * dz1
        dz2 = rx * dy1 - ry * dx1
        ox[i] = px + a * cx1 + b * cx2 + ux + b * dx1 + c * dx2
        oy[i] = py + a * cy1 + b * cy2 + uy + b * dy1 + c * dy2
        oz[i] = pz + a * cz1 + b * cz2 + uz + b * dz1 + c * dz2


def deskew(x: np.ndarray, y: np.ndarray, z: np.ndarray, t: np.ndarray, t_ref: float,
           linear: np.ndarray, angular: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (LiDAR frame at their own times t, seconds on the same clock as t_ref) ->
    float32 points in the LiDAR frame at t_ref, for a constant LiDAR-frame twist."""
    n = x.shape[0]
    ox, oy, oz = (np.empty(n, np.float32) for _ in range(3))
    _deskew_kernel(x, y, z, np.asarray(t, dtype=np.float64), float(t_ref),
                   np.asarray(linear, np.float64).reshape(3), np.asarray(angular, np.float64).reshape(3),
                   ox, oy, oz)
    return ox, oy, oz


def twist_in_frame(linear: np.ndarray, angular: np.ndarray, body_from_frame: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Twist of a body (in the body frame) -> twist of a frame rigidly mounted on it, in that
    frame. body_from_frame: 4x4 mapping frame points into the body frame (e.g. base_link <-
    lidar_link)."""
    m = np.asarray(body_from_frame, dtype=np.float64)
    r, p = m[:3, :3], m[:3, 3]
    v = np.asarray(linear, np.float64).reshape(3)
    w = np.asarray(angular, np.float64).reshape(3)
    return r.T @ (v + np.cross(w, p)), r.T @ w
