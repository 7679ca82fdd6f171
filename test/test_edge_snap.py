"""Edge snap (core/edge_snap.py): fills left between the two sides of a depth edge move to the
nearer side; measured pixels, smooth surfaces and fills already on a side stay as they are."""
from __future__ import annotations

import numpy as np
import pytest

from depth_ai_nodes.core.depth_metrics import _window_extremes, flying_pixels
from depth_ai_nodes.core.edge_snap import check_window, snap_to_edges


def step_edge(h: int = 20, w: int = 30, near: float = 1.0, far: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Truth with a vertical depth step at column 15, and the sensor depth with a 3 px band
    hidden across it (columns 14..16): a 7 px window around each hidden pixel holds both sides."""
    gt = np.full((h, w), near, np.float32)
    gt[:, 15:] = far
    inp = gt.copy()
    inp[:, 14:17] = 0.0
    return gt, inp


def test_a_hedged_fill_across_a_step_takes_the_side_measured_closest():
    """Band columns 14..16 over a step at 15: column 14 is 1 px from the near side and 3 px from
    the far one, column 16 the reverse, whatever the fill; column 15, 2 px from both, takes
    the side its fill leans to in log depth (2 m: 3 m; 1.5 m: 1 m)."""
    gt, inp = step_edge()
    hole = inp == 0
    for fill, middle in ((2.0, 3.0), (1.5, 1.0)):
        pred = np.where(hole, fill, gt).astype(np.float32)
        out, snapped = snap_to_edges(pred, inp, window=7)
        assert snapped.sum() == hole.sum()
        assert (out[:, 14] == 1.0).all() and (out[:, 16] == 3.0).all() and (out[:, 15] == middle).all()
        np.testing.assert_array_equal(out[~hole], pred[~hole])
        assert flying_pixels(out, gt, hole)[0] == 0 < flying_pixels(pred, gt, hole)[0]
        # the previous rule, kept for the benchmark: every column follows the fill's lean
        lean = snap_to_edges(pred, inp, window=7, side="lean")[0]
        np.testing.assert_array_equal(lean[hole], 3.0 if fill == 2.0 else 1.0)
    with pytest.raises(ValueError, match="side"):
        snap_to_edges(pred, inp, side="nearest")


def test_what_is_not_flying_stays():
    gt, inp = step_edge()
    hole = inp == 0
    # a fill within 10 % of a side belongs to it; a fill beyond both sides is not "between"
    for fill in (1.08, 2.8, 0.5, 4.0):
        pred = np.where(hole, fill, gt).astype(np.float32)
        out, snapped = snap_to_edges(pred, inp, window=7)
        assert not snapped.any(), fill
        np.testing.assert_array_equal(out, pred)
    # measured pixels keep the model's value, even when it is between two sides
    pred = np.full_like(gt, 2.0)
    out, snapped = snap_to_edges(pred, inp, window=7)
    assert not snapped[~hole].any() and (out[~hole] == 2.0).all()


def test_smooth_slopes_and_far_hole_centres_are_left_alone():
    h, w = 40, 40
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    ramp = 1.0 + 0.02 * yy                   # 2 % per pixel: a 7 px window spans 12 %
    inp = ramp.copy()
    inp[15:25] = 0.0
    pred = np.where(inp > 0, ramp, ramp[15:25].mean()).astype(np.float32)
    assert not snap_to_edges(pred, inp, window=7)[1].any()
    # the window's reach: a band of 6 px across the step leaves no hidden pixel with both
    # sides within 3 px (a band of up to 5 px has some), so nothing moves; a wider window does
    gt, inp = step_edge()
    inp[:, 12:18] = 0.0
    pred = np.where(inp > 0, gt, 2.0).astype(np.float32)
    assert not snap_to_edges(pred, inp, window=7)[1].any()
    inp[:, 12] = gt[:, 12]
    assert snap_to_edges(pred, inp, window=7)[1].sum() == gt.shape[0]  # 5 px band: its middle column
    assert snap_to_edges(pred, inp, window=13)[1].any()


def test_the_default_window_reaches_across_a_7_px_band():
    """The shipped 9 px window reaches 4 px from a hidden pixel: across a 7 px band hidden over a
    step, the middle column sees both sides and moves; 7 px (3 px of reach) moves nothing."""
    from depth_ai_nodes.core.edge_snap import DEFAULT_WINDOW

    gt, inp = step_edge()
    inp[:, 12:19] = 0.0
    hole = inp == 0
    pred = np.where(hole, 2.0, gt).astype(np.float32)
    assert DEFAULT_WINDOW == 9
    assert not snap_to_edges(pred, inp, window=7)[1].any()
    out, snapped = snap_to_edges(pred, inp)
    assert snapped.sum() == gt.shape[0] and snapped[:, 15].all()
    assert flying_pixels(out, gt, hole)[0] == flying_pixels(pred, gt, hole)[0] - gt.shape[0]


def test_window_zero_is_off_and_bad_windows_are_refused():
    gt, inp = step_edge()
    pred = np.full_like(gt, 2.0)
    out, snapped = snap_to_edges(pred, inp, window=0)
    assert not snapped.any() and np.array_equal(out, pred)
    for bad in (1, 2, 4, -3):
        with pytest.raises(ValueError, match="odd"):
            check_window(bad)
    with pytest.raises(ValueError, match="must be the same"):
        snap_to_edges(pred[:, :10], inp, 7)


def test_the_kernel_follows_the_rule_on_random_images_with_nan_and_zero():
    """The whole kernel (row and column passes, decision) against the rule written out in
    numpy on the brute-force window extremes of depth_metrics."""
    rng = np.random.default_rng(3)
    for window in (3, 7, 11):
        d = rng.uniform(0.3, 8.0, (37, 53)).astype(np.float32)
        d[rng.uniform(size=d.shape) < 0.4] = 0.0
        d[rng.uniform(size=d.shape) < 0.05] = np.nan
        pred = rng.uniform(0.2, 9.0, d.shape).astype(np.float32)
        pred[0, :3] = np.nan
        measured = np.isfinite(d) & (d > 0)
        near, far = _window_extremes(np.where(measured, d, np.nan), window // 2)
        with np.errstate(invalid="ignore"):
            flying = (~measured & np.isfinite(near) & (far > 1.2 * near) & (pred > 1.1 * near)
                      & (pred < 0.9 * far))
        want = pred.copy()
        r = window // 2
        for y, x in zip(*np.nonzero(flying)):  # the side measured closest; a tie: the fill's lean
            n, f = near[y, x], far[y, x]
            nf = np.float32(n) * np.float32(f)  # the sides split at the geometric mean
            ys, xs = np.nonzero(measured[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1])
            v = d[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1][ys, xs]
            d2 = (ys + max(y - r, 0) - y) ** 2 + (xs + max(x - r, 0) - x) ** 2
            dn, df = d2[v * v < nf].min(), d2[v * v >= nf].min()
            want[y, x] = (n if dn < df else f) if dn != df else (n if pred[y, x] ** 2 <= n * f else f)
        out, snapped = snap_to_edges(pred, d, window)
        assert flying.sum() > 20
        np.testing.assert_array_equal(snapped, flying)
        np.testing.assert_array_equal(out, want.astype(np.float32))


def test_the_pipeline_snaps_completion_fills_and_halves_their_confidence():
    """The shipped completion model through DepthPipeline on a step edge with a hidden band:
    with the default window no filled pixel is left between the sides (the issue's
    flying-pixel rule on the truth), and the snapped ones carry half the confidence."""
    from depth_ai_nodes.core.depth_model import DepthModel
    from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig
    from depth_ai_nodes.resources import model_path

    gt, inp = step_edge(64, 96)
    gt[:, 15:], inp[:, 15:] = 1.0, 1.0      # the step moves to column 48, the band to 47..49
    gt[:, 48:], inp[:, 48:] = 2.5, 2.5
    inp[:, 47:50] = 0.0
    hole = inp == 0
    rgb = np.full(gt.shape + (3,), 128, np.uint8)
    model = DepthModel(str(model_path("depth_completion.yaml")), intra_op_threads=1)
    off = DepthPipeline(model, PipelineConfig(edge_snap_px=0)).process(rgb, inp)
    on = DepthPipeline(model, PipelineConfig()).process(rgb, inp)
    assert off.edge_snapped == 0 and on.edge_snapped > 0
    moved = on.depth != off.depth
    assert moved.sum() == on.edge_snapped and moved[hole].sum() == on.edge_snapped
    assert flying_pixels(off.depth, gt, hole)[0] > 0 == flying_pixels(on.depth, gt, hole)[0]
    np.testing.assert_allclose(on.confidence[moved], 0.5 * off.confidence[moved], rtol=1e-6)
    np.testing.assert_array_equal(on.confidence[~moved], off.confidence[~moved])
    # sparse input (projected LiDAR) is not snapped: its gaps are not holes at edges
    assert DepthPipeline(model, PipelineConfig()).process(rgb, None, inp).edge_snapped == 0
    with pytest.raises(ValueError, match="odd"):
        DepthPipeline(model, PipelineConfig(edge_snap_px=4))


def test_the_commands_refuse_a_bad_window(tmp_path, capsys):
    from depth_ai_nodes.tools.cli import main as cli

    assert cli(["infer", "--color", str(tmp_path / "none.png"), "--edge-snap", "4",
                "--out", str(tmp_path / "o.npy")]) == 2
    assert cli(["eval", "--scene", "--edge-snap", "2", "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.count("--edge-snap: edge snap window must be 0 (off) or an odd number") == 2, err
