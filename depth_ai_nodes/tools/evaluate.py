"""`depth-ai eval`: depth accuracy of a model vs classical hole filling, as a table.

    depth-ai eval --real [--data ../shared/data] [--masks 20] [--out eval_out]
    depth-ai eval --folder DIR            # DIR/<name>_color.* + <name>_depth.png (mm) / .npy (m)
    depth-ai eval --scene [--frames 5]    # the built-in scene against its exact ground truth

Masking protocol (real frames have no ground truth in their holes): valid sensor
pixels are hidden in sensor-like patterns (core/hole_masks.py: bands along depth
edges, dark and specular regions, random blobs; 5-30 % of the valid pixels,
seeded), every method fills the depth with them hidden, and AbsRel, RMSE, MAE and
delta<1.25 are computed on the hidden pixels only. Methods:
  model    the model spec given (default: the shipped depth completion model)
  telea    OpenCV cv2.inpaint(depth_mm uint16, holes, radius 5, INPAINT_TELEA)
           on the depth in millimetres as 16-bit (cv2 >= 4 inpaints 16-bit
           single-channel images directly, no 8-bit quantisation)
  rs_hole  librealsense hole_filling_filter (mode 1, farthest from around) run on
           the same 16-bit depth through a pyrealsense2 software_device
One PNG per sample: colour, input depth with holes, each method's depth, and the
model's absolute error map on the hidden pixels.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from depth_ai_nodes.core.depth_metrics import confidence_separation, depth_metrics, flying_pixels
from depth_ai_nodes.core.edge_snap_rule import DEFAULT_WINDOW
from depth_ai_nodes.core.hole_masks import make_hole_mask


@dataclass
class Sample:
    name: str
    rgb: np.ndarray            # (H, W, 3) uint8
    depth_m: np.ndarray        # (H, W) float32 sensor depth, 0 invalid
    gt_m: np.ndarray | None = None  # exact ground truth (scene); None: masking protocol
    tag: str = ""                   # file name of its PNG (default: name)


# ------------------------------------------------------------------ data sources
def _img(path: Path, flags: int = -1) -> np.ndarray:
    import cv2

    a = cv2.imread(str(path), flags)
    if a is None:
        raise OSError(f"cannot read {path}")
    return a


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(_img(path, 1)[..., ::-1])


def load_rgbd_frames(root: Path) -> Iterator[Sample]:
    """The real single RGB-D frames of ../shared/data/rgbd in their documented formats."""
    d = root / "rgbd"
    if (d / "TUM_depth.png").is_file():
        yield Sample("TUM", _rgb(d / "TUM_color.png"), _img(d / "TUM_depth.png").astype(np.float32) / 5000.0)
    if (d / "NYU_depth.pgm").is_file():
        raw = _img(d / "NYU_depth.pgm")
        if raw.max() > 2047:  # written little-endian although PGM is big-endian
            raw = raw.byteswap()
        raw = raw.astype(np.float64)
        with np.errstate(divide="ignore"):
            m = np.where(raw < 2047, 351.3 / (1092.5 - raw), 0.0)
        m[(m < 0.3) | (m > 10.0)] = 0.0
        yield Sample("NYU", _rgb(d / "NYU_color.ppm"), m.astype(np.float32))
    if (d / "SUN_depth.png").is_file():
        raw = _img(d / "SUN_depth.png").astype(np.uint32)
        m = (((raw >> 3) | (raw << 13)) & 0xFFFF).astype(np.float32) / 1000.0
        m[m > 10.0] = 0.0
        yield Sample("SUN", _rgb(d / "SUN_color.jpg"), m)


def load_realsense_bag(path: Path) -> Iterator[Sample]:
    """The D435 recording: depth aligned to colour with librealsense's rs.align."""
    import pyrealsense2 as rs

    if not path.is_file():
        return
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    profile = pipe.start(cfg)
    try:
        profile.get_device().as_playback().set_real_time(False)
        scale = profile.get_device().first_depth_sensor().get_depth_scale()
        align = rs.align(rs.stream.color)
        for _ in range(20):
            ok, fs = pipe.try_wait_for_frames(2000)
            if not ok:
                break
            if fs.get_color_frame() and fs.get_depth_frame():
                al = align.process(fs)
                d = np.asanyarray(al.get_depth_frame().get_data()).astype(np.float32) * scale
                c = np.asanyarray(al.get_color_frame().get_data()).copy()
                yield Sample("D435", c, d)
                return
    finally:
        pipe.stop()


def load_folder(root: Path) -> Iterator[Sample]:
    """<name>_color.(png|jpg|ppm) with <name>_depth.png (16-bit mm) or <name>_depth.npy (m)."""
    from depth_ai_nodes.tools.infer import load_depth

    for color in sorted(root.glob("*_color.*")):
        stem = color.name.rsplit("_color", 1)[0]
        for ext in (".npy", ".png"):
            dp = root / f"{stem}_depth{ext}"
            if dp.is_file():
                yield Sample(stem, _rgb(color), load_depth(dp))
                break


# ../shared/data/rgbd-train: its folders, those whose colour is not registered to depth, and the
# share of each folder (its last frames: one contiguous block of the sequence) that training
# never sees and model choices are made on. Training, the quality guard and bench_edge_snap all
# split it here.
RGBD_TRAIN_FOLDERS = ("7scenes_redkitchen", "sun3d_office", "apc_f200", "osd_kinect")
RGBD_TRAIN_UNREGISTERED = frozenset({"7scenes_redkitchen"})  # colour 10-20 px off its depth
SELECTION_SHARE = 0.12


def rgbd_train_split(folder: Path, share: float = SELECTION_SHARE) -> tuple[list[Path], list[Path]]:
    """(training, selection) depth files of one rgbd-train folder, in frame order."""
    files = sorted(Path(folder).glob("*_depth.png"))
    n_sel = max(1, int(round(share * len(files)))) if files else 0
    return files[:len(files) - n_sel], files[len(files) - n_sel:]


def load_scene(frames: int, seed: int) -> Iterator[Sample]:
    """Built-in scene frames at 640x480: sensor depth and exact ground truth, both in the
    depth/IR geometry (the IR image, grey, stands in for colour there, since the colour
    camera sits 15 mm away; that keeps every pixel exact)."""
    from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World

    cam = SyntheticCamera(World.default(seed=seed), CameraRig(640, 480), seed=seed)
    for i in range(frames):
        f = cam.render(2.0 + 3.0 * i)
        gt = np.nan_to_num(f.gt_depth_m, nan=0.0).astype(np.float32)
        yield Sample("scene", np.repeat(f.ir[..., None], 3, axis=2),
                     f.depth_mm.astype(np.float32) / 1000.0, gt, tag=f"scene_t{f.t:.0f}")


# ------------------------------------------------------------------ methods
def telea(depth_m: np.ndarray, radius: int = 5) -> np.ndarray:
    import cv2

    mm = np.clip(np.nan_to_num(depth_m) * 1000.0 + 0.5, 0, 65535).astype(np.uint16)
    holes = (mm == 0).astype(np.uint8)
    return cv2.inpaint(mm, holes, radius, cv2.INPAINT_TELEA).astype(np.float32) / 1000.0


def rs_hole_filling(depth_m: np.ndarray, mode: int = 1) -> np.ndarray:
    """librealsense hole_filling_filter on a numpy depth through a software_device."""
    import pyrealsense2 as rs

    mm = np.ascontiguousarray(np.clip(np.nan_to_num(depth_m) * 1000.0 + 0.5, 0, 65535).astype(np.uint16))
    h, w = mm.shape
    dev = rs.software_device()
    sensor = dev.add_sensor("Stereo Module")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = w, h, 500.0, 500.0, w / 2, h / 2
    intr.model = rs.distortion.none
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height = rs.stream.depth, 0, 1, w, h
    vs.fps, vs.bpp, vs.fmt, vs.intrinsics = 30, 2, rs.format.z16, intr
    prof = sensor.add_video_stream(vs)
    sensor.add_read_only_option(rs.option.depth_units, 0.001)
    queue = rs.frame_queue(2)
    sensor.open(prof)
    sensor.start(queue)
    try:
        f = rs.software_video_frame()
        f.pixels, f.bpp, f.stride, f.timestamp = mm, 2, 2 * w, 0.0
        f.domain, f.frame_number, f.profile = rs.timestamp_domain.hardware_clock, 1, prof.as_video_stream_profile()
        sensor.on_video_frame(f)
        frame = queue.wait_for_frame(2000)
        out = np.asanyarray(rs.hole_filling_filter(mode).process(frame).get_data()).astype(np.float32)
    finally:
        sensor.stop()
        sensor.close()
    return out / 1000.0


def model_method(spec: str | None, threads: int,
                 edge_snap: int = DEFAULT_WINDOW) -> tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    from depth_ai_nodes.core.depth_model import DepthModel
    from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig
    from depth_ai_nodes.resources import model_spec

    model = DepthModel(str(model_spec(spec or "")), intra_op_threads=threads)
    pipe = DepthPipeline(model, PipelineConfig(max_depth_m=100.0, min_depth_m=0.01, edge_snap_px=edge_snap))

    def run(rgb: np.ndarray, depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pipe.aligner.reset()  # independent samples: no temporal smoothing across them
        res = pipe.process(rgb, depth_m)
        return res.depth, res.confidence

    return model.spec.name, run


# ------------------------------------------------------------------ reporting
class Progress:
    """A minimal progress bar on stderr (no dependency)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.enabled = enabled and total > 1

    def step(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        el = time.monotonic() - self.t0
        eta = el / frac - el if frac > 0 else 0
        bar = "#" * int(30 * frac)
        print(f"\r[{bar:<30}] {self.done}/{self.total} {what[:30]:<30} eta {eta:4.0f}s",
              end="" if self.done < self.total else "\n", file=sys.stderr, flush=True)


def write_png(path: Path, sample: Sample, inp: np.ndarray, preds: dict[str, np.ndarray],
              gt: np.ndarray, eval_mask: np.ndarray, model_name: str) -> None:
    from PIL import Image

    from depth_ai_nodes.core.colormap import colorize_depth, colorize_unit, depth_range

    near, far = depth_range(gt)
    tiles = [sample.rgb, colorize_depth(inp, near, far)]
    tiles += [colorize_depth(p, near, far) for p in preds.values()]
    pred = preds[model_name]
    err = np.full(gt.shape, np.nan, np.float32)
    err[eval_mask] = np.abs(np.nan_to_num(pred[eval_mask]) - gt[eval_mask])
    scale = max(float(np.nanpercentile(err, 98)) if eval_mask.any() else 1.0, 1e-3)
    tiles.append(colorize_unit(err / scale))
    h, w = gt.shape
    canvas = np.zeros((h * 2, w * ((len(tiles) + 1) // 2), 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, (len(tiles) + 1) // 2)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    Image.fromarray(canvas).save(path)


def run(args: argparse.Namespace) -> int:
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
    from depth_ai_nodes.core.edge_snap_rule import check_window

    try:
        check_window(args.edge_snap)
    except ValueError as err:
        print(f"depth-ai eval: --edge-snap: {err}", file=sys.stderr)
        return 2
    name, fn = model_method(args.model, args.threads, args.edge_snap)
    methods[name] = fn
    model_name = name
    if not args.no_baselines:
        methods["telea"] = lambda rgb, d: telea(d)
        methods["rs_hole"] = lambda rgb, d: rs_hole_filling(d)
    samples: list[Sample] = []
    data = Path(args.data)
    if args.real:
        if not data.is_dir():
            print(f"depth-ai eval: {data} does not exist (give --data)", file=sys.stderr)
            return 2
        samples += list(load_rgbd_frames(data))
        samples += list(load_realsense_bag(data / "realsense" / "d435_single_depth_color_640x480.bag"))
    if args.folder:
        samples += list(load_folder(Path(args.folder)))
    if args.scene:
        samples += list(load_scene(args.frames, args.seed))
    if not samples:
        print("depth-ai eval: nothing to evaluate (use --real, --folder or --scene)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, list[dict]]] = {}
    masks = args.masks
    prog = Progress(sum(1 if s.gt_m is not None else masks for s in samples), not args.quiet)
    conf_err: list[tuple[np.ndarray, np.ndarray]] = []  # the model's (|error|, confidence) on filled pixels
    measured: list[tuple[np.ndarray, np.ndarray]] = []  # scene: (model error, raw sensor error) where it measured
    for s in samples:
        trials = [None] if s.gt_m is not None else range(masks)
        for k in trials:
            if s.gt_m is None:
                hide = make_hole_mask(s.depth_m, s.rgb, seed=args.seed * 1000 + int(k))
                inp = np.where(hide, 0.0, s.depth_m).astype(np.float32)
                gt, sel, tag = s.depth_m, hide, f"{s.name}_m{k}"
            else:  # scene: the sensor's own holes and noise against exact ground truth
                inp, gt, tag = s.depth_m, s.gt_m, s.tag or s.name
                sel = gt > 0
            preds = {m: f(s.rgb, inp) for m, f in methods.items()}
            pred_depth, conf = preds[model_name]
            preds[model_name] = pred_depth
            if s.gt_m is None:  # real frames: the confidence of what was filled, against its error
                conf_err.append((np.abs(np.nan_to_num(pred_depth[sel], nan=0.0) - gt[sel]), conf[sel]))
            else:  # scene: is the depth the sensor did measure cleaner after the model?
                m = (inp > 0) & (gt > 0)
                measured.append((np.nan_to_num(pred_depth[m], nan=0.0) - gt[m], inp[m] - gt[m]))
            for m, p in preds.items():
                row = depth_metrics(p, gt, sel)
                row["flying"], row["near_edge"] = flying_pixels(p, gt, sel)
                rows.setdefault(s.name, {}).setdefault(m, []).append(row)
            write_png(out / f"{tag}.png", s, inp, preds, gt, sel, model_name)
            prog.step(tag)
    print_table(rows, model_name, masks)
    if measured:
        model_err = np.concatenate([a for a, _ in measured])
        raw_err = np.concatenate([b for _, b in measured])
        rm, rr = float(np.sqrt(np.mean(model_err ** 2))), float(np.sqrt(np.mean(raw_err ** 2)))
        print(f"scene, pixels the sensor measured ({model_err.size}): RMSE {model_name} {rm:.4f} m, raw sensor "
              f"{rr:.4f} m, ratio {rm / rr:.3f} (goal <= 0.8: cleaner, not only fuller)")
    if conf_err:
        sep = confidence_separation(np.concatenate([e for e, _ in conf_err]), np.concatenate([c for _, c in conf_err]))
        print(f"{model_name} confidence on filled real pixels: mean |error| of the 20 % least confident / "
              f"the 20 % most confident = {sep:.2f} (goal >= 2)")
    return 0


def summarize(rows: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per dataset and method: RMSE pooled over masks (sqrt of the mean squared error,
    weighted by hidden pixel counts), the other metrics averaged the same way."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ds, per in rows.items():
        for m, lst in per.items():
            n = np.array([r["n"] for r in lst], float)
            if n.sum() == 0:
                continue
            agg = {k: float(np.sum(n * np.array([r[k] for r in lst])) / n.sum()) for k in ("abs_rel", "mae", "delta1")}
            agg["rmse"] = float(np.sqrt(np.sum(n * np.array([r["rmse"] for r in lst]) ** 2) / n.sum()))
            agg["n"] = int(n.sum())
            near = sum(r.get("near_edge", 0) for r in lst)
            agg["flying_n"], agg["near_edge_n"] = sum(r.get("flying", 0) for r in lst), near
            agg["flying"] = agg["flying_n"] / near if near else float("nan")
            out.setdefault(ds, {})[m] = agg
    return out


def print_table(rows: dict[str, dict[str, list[dict]]], model_name: str, masks: int) -> None:
    summary = summarize(rows)
    print(f"\nhidden-pixel metrics ({masks} seeded masks per real frame; scene: all GT pixels)")
    # the counts behind the flying share: a frame with few depth edges decides it by a few pixels
    print("| data | method | AbsRel | RMSE (m) | MAE (m) | delta<1.25 | RMSE / telea | MAE / telea "
          "| flying pixels near edges (flying / near an edge) | pixels |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ds, per in summary.items():
        tel = per.get("telea", {})
        for m, a in per.items():
            ratio = f"{a['rmse'] / tel['rmse']:.3f}" if tel.get("rmse") else "-"
            mae_ratio = f"{a['mae'] / tel['mae']:.3f}" if tel.get("mae") else "-"
            print(f"| {ds} | {m} | {a['abs_rel']:.4f} | {a['rmse']:.4f} | {a['mae']:.4f} | "
                  f"{a['delta1']:.4f} | {ratio} | {mae_ratio} | {100 * a['flying']:.2f} % "
                  f"({a['flying_n']} / {a['near_edge_n']}) | {a['n']} |")
    # the goal: model RMSE <= 0.75 x telea on each real dataset
    ratios = [per[model_name]["rmse"] / per["telea"]["rmse"] for per in summary.values()
              if model_name in per and "telea" in per and per["telea"]["rmse"] > 0]
    if ratios:
        print(f"\n{model_name} RMSE / telea RMSE: mean {np.mean(ratios):.3f}, worst {max(ratios):.3f} "
              f"(goal <= 0.75)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="depth accuracy tables and per-sample PNGs",
                              description=__doc__.split("\n")[0])
    p.add_argument("--real", action="store_true", help="the real RGB-D frames and the D435 recording in --data")
    p.add_argument("--data", default=str(Path.cwd().parent / "shared" / "data"),
                   help="shared data folder (default ../shared/data)")
    p.add_argument("--folder", help="a folder of <name>_color.* + <name>_depth.png (mm) / .npy (m)")
    p.add_argument("--scene", action="store_true", help="built-in scene frames vs exact ground truth")
    p.add_argument("--frames", type=int, default=4, help="scene frames")
    p.add_argument("--masks", type=int, default=20,
                   help="seeded hole masks per real frame (20: with 3 the verdict depends on the seeds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="model spec YAML, or the name of a shipped one, e.g. depth_fill_classical "
                   "(default: the shipped default, depth_fill_classical; depth_completion: the learned model)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--edge-snap", type=int, default=DEFAULT_WINDOW,
                   help="the pipeline's edge snap window (px, odd; 0: off), as the node's `edge_snap`")
    p.add_argument("--no-baselines", action="store_true", help="skip telea and rs_hole")
    p.add_argument("--out", default="eval_out", help="folder for the per-sample PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
