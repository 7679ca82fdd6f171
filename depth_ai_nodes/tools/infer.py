"""`depth-ai infer`: run a depth model on image files, the node's code path offline.

    depth-ai infer --color IMAGE [--depth DEPTH] [--sparse SPARSE] [--model SPEC] --out OUT.npy

Depth and sparse depth: 16-bit PNG in millimetres or .npy in metres, 0 or NaN
invalid, registered to the colour image. Writes float32 metres (NaN invalid) of
the colour image's size to OUT.npy and a colourised OUT.png beside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from depth_ai_nodes.core.edge_snap_rule import DEFAULT_WINDOW


def load_color(path: str | Path) -> np.ndarray:
    """Any image Pillow reads -> (H, W, 3) uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_depth(path: str | Path, png_scale_m: float = 0.001) -> np.ndarray:
    """16-bit PNG (mm by default) or .npy (m) -> float32 metres, NaN/0 kept as invalid."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        d = np.load(p).astype(np.float32)
    else:
        from PIL import Image

        with Image.open(p) as im:
            raw = np.asarray(im)
        if raw.dtype not in (np.uint16, np.int32, np.uint32) and raw.dtype != np.int16:
            raise ValueError(f"{p}: depth PNG must be 16-bit (millimetres), got {raw.dtype}")
        d = raw.astype(np.float32) * np.float32(png_scale_m)
    if d.ndim != 2:
        raise ValueError(f"{p}: depth must be a single-channel image, got shape {d.shape}")
    return d


def save_outputs(out: Path, depth: np.ndarray) -> Path:
    """OUT.npy (float32 m) and OUT.png (turbo colourised); returns the PNG path."""
    from PIL import Image

    from depth_ai_nodes.core.colormap import colorize_depth

    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, depth.astype(np.float32))
    png = out.with_suffix(".png")
    Image.fromarray(colorize_depth(depth)).save(png)
    return png


def run(args: argparse.Namespace) -> int:
    from depth_ai_nodes.core.depth_model import DepthModel, FrameError, ModelError
    from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig
    from depth_ai_nodes.core.edge_snap_rule import check_window
    from depth_ai_nodes.resources import model_spec

    try:
        check_window(args.edge_snap)
    except ValueError as err:
        print(f"depth-ai infer: --edge-snap: {err}", file=sys.stderr)
        return 2
    spec = str(model_spec(args.model or ""))
    try:
        model = DepthModel(spec, providers=args.providers.split(","), intra_op_threads=args.threads)
    except ModelError as err:
        print(f"depth-ai infer: {err}", file=sys.stderr)
        return 2
    try:
        rgb = load_color(args.color)
        depth = load_depth(args.depth) if args.depth else None
        sparse = load_depth(args.sparse) if args.sparse else None
    except (OSError, ValueError) as err:
        print(f"depth-ai infer: cannot read input: {err}", file=sys.stderr)
        return 2
    from depth_ai_nodes.core.metric_alignment import AlignmentConfig

    pipe = DepthPipeline(model, PipelineConfig(
        align=args.align, reference=args.reference, min_depth_m=args.min_depth, max_depth_m=args.max_depth,
        edge_snap_px=args.edge_snap,
        alignment=AlignmentConfig(min_references=args.min_references, inlier_threshold=args.inlier_threshold)))
    try:
        res = pipe.process(rgb, depth, sparse)
    except FrameError as err:
        print(f"depth-ai infer: {err}", file=sys.stderr)
        return 1
    if res.alignment.wrong_sign:
        print(f"depth-ai infer: configuration error: {res.warnings[-1]}", file=sys.stderr)
        return 2
    if res.aligned and not res.alignment.ok:
        print(f"depth-ai infer: no metric alignment: {res.alignment.reason} (the output would be all "
              f"invalid; give --depth or --sparse with enough valid pixels, or --align off)", file=sys.stderr)
        return 1
    out = Path(args.out)
    if out.suffix.lower() != ".npy":
        out = out.with_suffix(".npy")
    png = save_outputs(out, res.depth)
    a = res.alignment
    valid = np.isfinite(res.depth)
    print(f"{model.spec.name} ({model.kind}): {rgb.shape[1]}x{rgb.shape[0]}, session.run "
          f"{res.run_s * 1e3:.1f} ms, total {res.total_s * 1e3:.1f} ms; valid {valid.mean() * 100:.1f} %"
          + (f", depth {np.nanmin(res.depth):.2f}-{np.nanmax(res.depth):.2f} m" if valid.any() else ""))
    if res.aligned:
        print(f"alignment: scale {a.scale:.4g} shift {a.shift:.4g} residual {a.residual:.3g} "
              f"references {a.references} confidence {a.confidence:.2f}")
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out} and {png}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("infer", help="run a depth model on image files",
                              description=__doc__.split("\n")[0])
    p.add_argument("--color", required=True, help="colour image (PNG, JPEG, PPM, ...)")
    p.add_argument("--depth", help="sensor depth registered to colour: 16-bit PNG mm or .npy m")
    p.add_argument("--sparse", help="sparse metric depth (e.g. LiDAR) registered to colour")
    p.add_argument("--model", help="model spec YAML, or the name of a shipped one, e.g. depth_fill_classical "
                   "(default: the shipped default, depth_fill_classical; depth_completion: the learned model)")
    p.add_argument("--out", required=True, help="output .npy (float32 metres); a .png is written beside it")
    p.add_argument("--providers", default="CPUExecutionProvider", help="comma-separated providers")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: default)")
    # the node's alignment settings, with its defaults (depth_inference_node PARAMETERS), so
    # an offline run and the node agree
    p.add_argument("--align", default="auto", choices=("auto", "on", "off"),
                   help="metric alignment (auto: relative outputs only); the node's `align`")
    p.add_argument("--reference", default="auto", choices=("auto", "depth", "sparse"),
                   help="reference of the fit (auto: sparse if given, else depth); `alignment.reference`")
    p.add_argument("--min-references", type=int, default=30,
                   help="fewer valid reference pixels: no fit; `alignment.min_references`")
    p.add_argument("--inlier-threshold", type=float, default=0.05,
                   help="relative error counted as inlier; `alignment.inlier_threshold`")
    p.add_argument("--min-depth", type=float, default=0.1, help="output below this is invalid (m); `min_depth`")
    p.add_argument("--max-depth", type=float, default=20.0, help="output above this is invalid (m); `max_depth`")
    p.add_argument("--edge-snap", type=int, default=DEFAULT_WINDOW,
                   help="completion models: edge snap window (px, odd; 0: off); `edge_snap`")
    p.set_defaults(func=run)
