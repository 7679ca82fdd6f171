#!/usr/bin/env python3
"""How the edge snap's rule and window were chosen: the held-out rgbd-train split, never the
evaluation frames, and the built-in scene's own holes.

1. Held-out split: the last 12 % of each rgbd-train folder (the frames training/train_completion.py
   keeps out of training and test_model_quality guards), `--masks` seeded masks per frame from
   the evaluation's hole generator (seeds 7000 and up, not the evaluation's 0-19; `--first-seed`
   picks another set, and the RMSE verdict moves with it: bench/RESULTS.md). The default model
   fills each masked frame once with the snap off; every variant then snaps that same fill.
   Scored on the hidden pixels, pooled per folder: RMSE / Telea, MAE / Telea and the share of
   near-edge fills left flying (issue #10's definitions, as `depth-ai eval`).
2. Scene (`--scene-frames`, seed 777, not the `--scene` evaluation's seed 0): the sensor's own
   holes against exact ground truth, all of them and those near a true depth edge. There the
   truth of an occlusion shadow is the far surface, which the masks above never test.

Variants: off; each window with side "closer" (shipped) and "lean" (the rule before). The
baseline, Telea, runs on the same inputs in the same run.

    python bench/bench_edge_snap.py [--data ../shared/data] [--masks 6] [--first-seed 7000] [--windows 7 9 11 13]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from depth_ai_nodes.core.depth_metrics import _window_extremes, flying_pixels
from depth_ai_nodes.core.edge_snap import DEFAULT_WINDOW, snap_to_edges
from depth_ai_nodes.core.hole_masks import make_hole_mask
from depth_ai_nodes.tools.evaluate import (RGBD_TRAIN_FOLDERS, RGBD_TRAIN_UNREGISTERED, load_scene, model_method,
                                           rgbd_train_split, telea)


def held_out(root: Path):
    """(folder, rgb, depth in metres) of the held-out frames; unregistered colour is grey, as in
    training and the quality guard."""
    for folder in RGBD_TRAIN_FOLDERS:
        for dp in rgbd_train_split(root / folder)[1]:
            depth = np.asarray(Image.open(dp), dtype=np.float32) / 1000.0
            rgb = np.asarray(Image.open(str(dp).replace("_depth.png", "_color.jpg")).convert("RGB"))
            yield folder, (np.full_like(rgb, 128) if folder in RGBD_TRAIN_UNREGISTERED else rgb), depth


class Tally:
    """Squared and absolute error sums and flying counts per (group, variant)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, np.ndarray]] = {}

    def add(self, group: str, name: str, pred: np.ndarray, gt: np.ndarray, sel: np.ndarray) -> None:
        e = np.nan_to_num(pred[sel].astype(np.float64), nan=0.0) - gt[sel]
        fly, near_edge = flying_pixels(pred, gt, sel)
        row = self.rows.setdefault(group, {}).setdefault(name, np.zeros(4))
        row += (float(e @ e), float(np.abs(e).sum()), fly, near_edge)

    def print(self, title: str, groups: list[str]) -> None:
        names = list(next(iter(self.rows.values())))
        print(f"\n{title}: RMSE / Telea, MAE / Telea, flying share of near-edge fills")
        print("| variant | " + " | ".join(groups) + " |")
        print("|---|" + "---|" * len(groups))
        for n in names:
            cells = []
            for g in groups:
                r, t = self.rows[g][n], self.rows[g]["telea"]
                cells.append(f"{np.sqrt(r[0] / t[0]):.3f}, {r[1] / t[1]:.3f}, {100 * r[2] / max(r[3], 1):.1f} %")
            print(f"| {n} | " + " | ".join(cells) + " |")


def variants(raw: np.ndarray, inp: np.ndarray, windows: list[int]) -> dict[str, np.ndarray]:
    out = {"snap off": raw}
    for w in windows:
        for side in ("closer", "lean"):
            mark = " (shipped)" if (w, side) == (DEFAULT_WINDOW, "closer") else ""
            out[f"{w} px, {side}{mark}"] = snap_to_edges(raw, inp, w, side=side)[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path.cwd().parent / "shared" / "data"))
    ap.add_argument("--masks", type=int, default=6)
    ap.add_argument("--first-seed", type=int, default=7000, help="the masks' seeds are this and the next ones")
    ap.add_argument("--windows", type=int, nargs="+", default=[7, 9, 11, 13])
    ap.add_argument("--scene-frames", type=int, default=8)
    args = ap.parse_args()
    root = Path(args.data) / "rgbd-train"
    if not root.is_dir():
        raise SystemExit(f"no rgbd-train folder under {args.data} (give --data)")
    _, fill = model_method(None, 2, edge_snap=0)  # the default model, the snap applied here

    split = Tally()
    for folder, rgb, depth in held_out(root):
        for k in range(args.masks):
            hide = make_hole_mask(depth, rgb, seed=args.first_seed + k)
            inp = np.where(hide, 0.0, depth).astype(np.float32)
            raw, _ = fill(rgb, inp)
            preds = {"telea": telea(inp), **variants(raw, inp, args.windows)}
            sel = hide & (depth > 0)
            for name, p in preds.items():
                for group in (folder, "pooled"):
                    split.add(group, name, p, depth, sel)
    split.print(f"held-out rgbd-train split, {args.masks} masks per frame (seeds {args.first_seed} and up)",
                [*RGBD_TRAIN_FOLDERS, "pooled"])

    scene = Tally()
    for s in load_scene(args.scene_frames, 777):
        raw, _ = fill(s.rgb, s.depth_m)
        holes = (s.depth_m == 0) & (s.gt_m > 0)
        near, far = _window_extremes(np.where(s.gt_m > 0, s.gt_m, np.nan), 3)
        preds = {"telea": telea(s.depth_m), **variants(raw, s.depth_m, args.windows)}
        for name, p in preds.items():
            scene.add("all holes", name, p, s.gt_m, holes)
            scene.add("near-edge holes", name, p, s.gt_m, holes & (far > 1.2 * near))
    scene.print(f"built-in scene's own holes, {args.scene_frames} frames (seed 777)",
                ["all holes", "near-edge holes"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
