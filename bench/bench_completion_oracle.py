#!/usr/bin/env python3
"""How far below Telea can a hole filler get on the real frames' masked pixels? An oracle bound.

`depth-ai eval --real` hides valid depth in sensor-like masks and scores fills on the hidden
pixels. Most of Telea's squared error there sits in bands along depth edges, where a filler
must decide per pixel between the near and the far side. This script gives one filler
perfect knowledge of that decision: for each hidden pixel it takes whichever of Telea's value,
the nearest (minimum) or the farthest (maximum) known depth within a window around it is
closest to the truth. No real method knows that, so its RMSE bounds from below any filler
that fills with Telea or a nearby known depth and never gets an edge decision wrong. Same
frames, masks (seeds) and Telea as `depth-ai eval --real --masks 3`; the baseline is Telea in
the same run.

    python bench/bench_completion_oracle.py [--data ../shared/data] [--masks 3] [--window 15 31]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from depth_ai_nodes.core.hole_masks import make_hole_mask
from depth_ai_nodes.tools.evaluate import load_realsense_bag, load_rgbd_frames, telea


def window_extreme(a: np.ndarray, size: int, fn) -> np.ndarray:
    """Separable min/max over a size x size window (edges padded with the neutral value)."""
    r = size // 2
    neutral = np.inf if fn is np.min else -np.inf
    p = np.pad(a, r, constant_values=neutral)
    rows = fn(sliding_window_view(p, size, axis=1), axis=-1)
    return fn(sliding_window_view(rows, size, axis=0), axis=-1)


def oracle_fill(inp: np.ndarray, gt: np.ndarray, base: np.ndarray, size: int) -> np.ndarray:
    known = inp > 0
    near = window_extreme(np.where(known, inp, np.inf), size, np.min)
    far = window_extreme(np.where(known, inp, -np.inf), size, np.max)
    cands = np.stack([base, np.where(np.isfinite(near), near, base), np.where(np.isfinite(far), far, base)])
    pick = np.abs(cands - gt).argmin(0)
    return np.take_along_axis(cands, pick[None], 0)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path.cwd().parent / "shared" / "data"))
    ap.add_argument("--masks", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", type=int, nargs="+", default=[15, 31])
    args = ap.parse_args()
    data = Path(args.data)
    samples = list(load_rgbd_frames(data)) + list(load_realsense_bag(
        data / "realsense" / "d435_single_depth_color_640x480.bag"))
    if not samples:
        raise SystemExit(f"no real frames under {data} (give --data)")
    print("| data | Telea RMSE (m) | " + " | ".join(f"oracle {w}x{w} RMSE (m) / Telea" for w in args.window) + " |")
    print("|---|---|" + "---|" * len(args.window))
    for s in samples:
        se = {w: 0.0 for w in ["telea", *args.window]}
        n = 0
        for k in range(args.masks):  # the masks depth-ai eval uses
            hide = make_hole_mask(s.depth_m, s.rgb, seed=args.seed * 1000 + k)
            inp = np.where(hide, 0.0, s.depth_m).astype(np.float32)
            base = telea(inp)
            se["telea"] += float(((base - s.depth_m)[hide] ** 2).sum())
            for w in args.window:
                se[w] += float(((oracle_fill(inp, s.depth_m, base, w) - s.depth_m)[hide] ** 2).sum())
            n += int(hide.sum())
        tel = np.sqrt(se["telea"] / n)
        cells = [f"{np.sqrt(se[w] / n):.4f} / {np.sqrt(se[w] / se['telea']):.3f}x" for w in args.window]
        print(f"| {s.name} | {tel:.4f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
