"""session.run cost of depth completion models at 640x480, side by side in one run (issue #10).

    python bench/bench_model_cost.py [--threads 2] [--runs 15] [--baseline REV_OR_FILE] [MODEL.yaml|MODEL.onnx ...]

Times onnxruntime's session.run (CPU provider, `--threads` intra-op threads) on the same
640x480 frame (colour, depth with 20 % holes, mask), interleaving the models run by run so
machine load hits them alike. A model given by its spec runs with the spec's session settings
(`graph_optimization`), as the node runs it; a bare .onnx file with onnxruntime's defaults.
The baseline is the model shipped before the real-data retraining, taken from git
(`--baseline` names a revision or an .onnx file), with onnxruntime's defaults as it shipped,
and again at `graph_optimization: extended` for comparison at the same level. The default model
list is the two shipped specs (the completion model, and its classical fill alone, the node's
default), then the edge snap the pipeline runs after a completion model. Prints medians, 10th
percentiles (the undisturbed machine) and the ratios to the baseline.
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
                   default=[ROOT / "models" / "depth_completion.yaml", ROOT / "models" / "depth_fill_classical.yaml"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--baseline", default=BASELINE_REV)
    args = p.parse_args()
    from depth_ai_nodes.core.depth_model import session_level
    from depth_ai_nodes.core.model_spec import load_spec

    rng = np.random.default_rng(0)
    h, w = 480, 640
    depth = (rng.uniform(0.5, 5.0, (1, 1, h, w))).astype(np.float32)
    mask = (rng.uniform(size=(1, 1, h, w)) > 0.2).astype(np.float32)
    feeds = {"rgb": rng.uniform(size=(1, 3, h, w)).astype(np.float32), "depth": depth * mask, "mask": mask}
    with tempfile.TemporaryDirectory() as tmp:
        base_file = baseline_file(args.baseline, Path(tmp))
        runs = {"baseline": (base_file, "all"), "baseline, extended": (base_file, "extended")}
        for m in args.models:
            spec = load_spec(m) if m.suffix.lower() in (".yaml", ".yml") else None
            runs[m.name if m.name not in runs else str(m)] = (
                (spec.model_path, spec.graph_optimization) if spec else (m, "all"))
        sessions = {}
        for k, (f, level) in runs.items():
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.graph_optimization_level = session_level(level)
            sessions[k] = ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
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
    base10 = float(np.percentile(times["baseline"], 10))
    print(f"session.run at {w}x{h}, {args.threads} intra-op threads, {args.runs} interleaved runs")
    print("| model (file, graph_optimization) | median ms | ratio | 10th pct ms | ratio |")
    print("|---|---|---|---|---|")
    for k, t in times.items():
        f, level = runs[k]
        name = args.baseline if k.startswith("baseline") else f.name
        print(f"| {k} ({name}, {level}) | {1e3 * np.median(t):.1f} | {np.median(t) / base:.2f} | "
              f"{1e3 * np.percentile(t, 10):.1f} | {np.percentile(t, 10) / base10:.2f} |")
    # what the pipeline adds after a completion model: the edge snap on the same frame (one thread)
    from depth_ai_nodes.core.edge_snap import DEFAULT_WINDOW, snap_to_edges

    pred = np.where(mask[0, 0] > 0, depth[0, 0], 2.75).astype(np.float32)  # holes between the sides
    snap_to_edges(pred, feeds["depth"][0, 0], DEFAULT_WINDOW)
    snap_t = []
    for _ in range(max(args.runs, 20)):
        t0 = time.perf_counter()
        snap_to_edges(pred, feeds["depth"][0, 0], DEFAULT_WINDOW)
        snap_t.append(time.perf_counter() - t0)
    print(f"| edge snap, {DEFAULT_WINDOW} px (core/edge_snap.py, after the model) | {1e3 * np.median(snap_t):.2f} | "
          f"{np.median(snap_t) / base:.3f} | {1e3 * np.percentile(snap_t, 10):.2f} | "
          f"{np.percentile(snap_t, 10) / base10:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
