"""Metric alignment: known scale/shift recovered under noise, outliers and sparse references."""
from __future__ import annotations

import numpy as np
import pytest

from depth_ai_nodes.core.metric_alignment import AlignmentConfig, MetricAligner


def scene(seed: int, n: int = 20000) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 8.0, n)


def relative_of(depth: np.ndarray, space: str, s: float, t: float) -> np.ndarray:
    """The prediction a relative model would give: y = s * p + t in its space, solved for p."""
    y = 1.0 / depth if space == "inverse_depth" else depth
    return (y - t) / s


@pytest.mark.parametrize("space,s,t", [("depth", 2.5, 0.3), ("inverse_depth", 0.8, 0.05)])
def test_recovers_scale_shift_with_noise_and_outliers(space, s, t):
    rng = np.random.default_rng(1)
    d = scene(1)
    pred = relative_of(d, space, s, t)
    ref = d * (1 + rng.normal(0, 0.01, d.size))            # 1 % sensor noise
    bad = rng.random(d.size) < 0.3                          # 30 % gross outliers
    ref[bad] = rng.uniform(0.3, 10.0, bad.sum())
    ref[rng.random(d.size) < 0.2] = 0.0                     # and holes
    al = MetricAligner(AlignmentConfig(space=space, smoothing=1.0))
    res = al.update(pred, ref)
    assert res.ok
    assert res.scale == pytest.approx(s, rel=0.02)
    assert res.shift == pytest.approx(t, rel=0.1, abs=0.01)
    metric = al.apply(pred, res)
    assert np.nanmedian(np.abs(metric - d) / d) < 0.01
    assert res.residual < 0.02
    assert 0.3 < res.confidence <= 1.0


def test_sparse_references_still_fit_but_with_lower_confidence():
    d = scene(2)
    pred = relative_of(d, "inverse_depth", 1.3, 0.02)
    ref = np.zeros_like(d)
    idx = np.random.default_rng(2).choice(d.size, 60, replace=False)   # LiDAR-like sparse
    ref[idx] = d[idx]
    al = MetricAligner(AlignmentConfig(space="inverse_depth", smoothing=1.0))
    sparse = al.update(pred, ref)
    assert sparse.ok and sparse.references == 60
    assert np.nanmedian(np.abs(al.apply(pred, sparse) - d) / d) < 0.01
    dense = MetricAligner(AlignmentConfig(space="inverse_depth")).update(pred, d)
    assert sparse.confidence < 0.5 * dense.confidence


def test_too_few_references_lowers_confidence_never_garbage():
    d = scene(3, 5000)
    pred = relative_of(d, "depth", 2.0, 0.5)
    few = np.zeros_like(d)
    few[:5] = d[:5]
    fresh = MetricAligner(AlignmentConfig(space="depth"))
    res = fresh.update(pred, few)
    assert not res.ok and res.confidence == 0.0 and "5 reference" in res.reason
    # with a previous good fit: reuse it, confidence decays frame after frame
    al = MetricAligner(AlignmentConfig(space="depth"))
    good = al.update(pred, d)
    c1 = al.update(pred, few)
    c2 = al.update(pred, None)
    assert c1.ok and c1.scale == good.scale
    assert good.confidence > c1.confidence > c2.confidence


def test_all_outliers_is_refused():
    d = scene(4, 3000)
    pred = relative_of(d, "depth", 1.0, 0.0)
    ref = np.random.default_rng(40).uniform(0.5, 8.0, d.size)  # unrelated to the prediction
    res = MetricAligner(AlignmentConfig(space="depth")).fit(pred, ref)
    assert not res.ok or res.confidence < 0.2


def test_temporal_smoothing_converges_without_jumping():
    d = scene(5, 5000)
    al = MetricAligner(AlignmentConfig(space="depth", smoothing=0.3))
    al.update(relative_of(d, "depth", 2.0, 0.0), d)
    scales = [al.update(relative_of(d, "depth", 3.0, 0.0), d).scale for _ in range(12)]
    assert 2.0 < scales[0] < 2.5                      # moves a fraction of the way
    assert all(b >= a for a, b in zip(scales, scales[1:]))
    assert scales[-1] == pytest.approx(3.0, rel=0.02)
