"""session.run cost of depth completion models at 640x480, side by side in one run (issue #10).

    python bench/bench_model_cost.py [--threads 2] [--runs 15] [--baseline REV_OR_FILE] [MODEL.onnx ...]

Times onnxruntime's session.run (CPU provider, `--threads` intra-op threads) on the same
640x480 frame (colour, depth with 20 % holes, mask), interleaving the models run by run so
machine load hits them alike. The baseline is the model shipped before the real-data
retraining, taken from git (`--baseline` names a revision or an .onnx file); the default
model list is the two shipped ones (the completion model, and its classical fill alone, the
node's default), then the edge snap the pipeline runs after a completion model. Prints medians
and the ratio to the baseline.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = "5507c19"  # the commit that shipped the pre-retraining models/depth_completion.onnx


def baseline_file(rev_or_file: str, tmp: Path) -> Path:
    if Path(rev_or_file).is_file():
        return Path(rev_or_file)
    out = tmp / f"baseline_{rev_or_file}.onnx"
    blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev_or_file}:models/depth_completion.onnx"],
                          capture_output=True, check=True).stdout
    out.write_bytes(blob)
    return out


def main() -> int:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", type=Path,
                   default=[ROOT / "models" / "depth_completion.onnx", ROOT / "models" / "depth_fill_classical.onnx"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--baseline", default=BASELINE_REV)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    h, w = 480, 640
    depth = (rng.uniform(0.5, 5.0, (1, 1, h, w))).astype(np.float32)
    mask = (rng.uniform(size=(1, 1, h, w)) > 0.2).astype(np.float32)
    feeds = {"rgb": rng.uniform(size=(1, 3, h, w)).astype(np.float32), "depth": depth * mask, "mask": mask}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"baseline": baseline_file(args.baseline, Path(tmp))}
        files.update({m.name if m.name not in files else str(m): m for m in args.models})
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sessions = {k: ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"]) for k, f in files.items()}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for s in sessions.values():
            for _ in range(3):
                s.run(None, feeds)
        for _ in range(args.runs):
            for k, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feeds)
                times[k].append(time.perf_counter() - t0)
    base = float(np.median(times["baseline"]))
    print(f"session.run at {w}x{h}, {args.threads} intra-op threads, {args.runs} interleaved runs (median)")
    print("| model | ms | ratio to baseline |")
    print("|---|---|---|")
    for k, t in times.items():
        print(f"| {k} ({files[k].name if k != 'baseline' else args.baseline}) | {1e3 * np.median(t):.1f} | "
              f"{np.median(t) / base:.2f} |")
    # what the pipeline adds after a completion model: the edge snap on the same frame (one thread)
    from depth_ai_nodes.core.edge_snap import snap_to_edges

    pred = np.where(mask[0, 0] > 0, depth[0, 0], 2.75).astype(np.float32)  # holes between the sides
    snap_to_edges(pred, feeds["depth"][0, 0], 7)
    snap_t = []
    for _ in range(max(args.runs, 20)):
        t0 = time.perf_counter()
        snap_to_edges(pred, feeds["depth"][0, 0], 7)
        snap_t.append(time.perf_counter() - t0)
    print(f"| edge snap, 7 px (core/edge_snap.py, after the model) | {1e3 * np.median(snap_t):.2f} | "
          f"{np.median(snap_t) / base:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
