"""One ONNX depth model on onnxruntime, fed and read as its spec says. ROS-free.

Start-up problems (missing or corrupt model, spec contradicting the graph, an
execution provider the installed onnxruntime lacks) raise ModelError with what to
fix; per-frame problems (wrong image size or type, NaN or wrongly shaped outputs)
raise FrameError, which callers log and count while they keep running.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .model_spec import DEPTH_UNITS, InputSpec, ModelSpec, SpecError, TensorInfo, load_spec, validate

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider", "rocm": "ROCMExecutionProvider",
    "coreml": "CoreMLExecutionProvider", "dml": "DmlExecutionProvider",
}


class ModelError(ValueError):
    """The model cannot be used (start-up); the message says what to fix."""


class FrameError(ValueError):
    """One frame could not be processed; the node logs it and keeps running."""


def session_level(name: str):
    """onnxruntime's GraphOptimizationLevel for a spec's `graph_optimization`."""
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    return {"all": levels.ORT_ENABLE_ALL, "extended": levels.ORT_ENABLE_EXTENDED,
            "basic": levels.ORT_ENABLE_BASIC, "disabled": levels.ORT_DISABLE_ALL}[name]


def resolve_providers(names: Sequence[str], available: Sequence[str] | None = None) -> list[str]:
    """Short or full provider names -> full names; an absent one is a ModelError."""
    import onnxruntime as ort

    avail = list(ort.get_available_providers() if available is None else available)
    out = []
    for n in names:
        full = PROVIDER_ALIASES.get(str(n).strip().lower(), str(n).strip())
        if full not in avail:
            raise ModelError(f"execution provider {n!r} ({full}) is not available in this onnxruntime; "
                             f"available: {', '.join(avail)} (install onnxruntime-gpu / "
                             f"onnxruntime-openvino for others)")
        out.append(full)
    if not out:
        raise ModelError("the provider list is empty; use e.g. ['CPUExecutionProvider']")
    return out


# ------------------------------------------------------------------ image resampling (numpy)
def resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of (H, W) or (H, W, C), pixel centres aligned (like cv2 INTER_LINEAR)."""
    H, W = img.shape[:2]
    if (H, W) == (h, w):
        return img
    ys = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
    xs = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    fy, fx = (ys - y0).astype(np.float32), (xs - x0).astype(np.float32)
    a = img.astype(np.float32, copy=False)
    if a.ndim == 3:
        fy, fx = fy[:, None, None], fx[None, :, None]
    else:
        fy, fx = fy[:, None], fx[None, :]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize: depth and masks must not mix valid with invalid."""
    H, W = img.shape[:2]
    if (H, W) == (h, w):
        return img
    ys = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.int64), H - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.int64), W - 1)
    return img[ys][:, xs]


@dataclass(frozen=True)
class Geometry:
    """Where the image sits in the network input: content box (y, x, h, w) of net (H, W)."""

    image_hw: tuple[int, int]
    net_hw: tuple[int, int]
    box: tuple[int, int, int, int]


def plan_geometry(spec: ModelSpec, h: int, w: int) -> Geometry:
    """Network size and content box for an h x w image under the spec's resize policy."""
    size = spec.size
    if spec.resize == "stretch":
        nh, nw = size.network_size(h, w)
        return Geometry((h, w), (nh, nw), (0, 0, nh, nw))
    # letterbox: keep aspect ratio, pad bottom/right... centred
    if size.mode == "multiple":
        n = size.multiple
        nh, nw = -(-h // n) * n, -(-w // n) * n
    elif size.mode == "fixed":
        nh, nw = size.height, size.width
    else:
        nh, nw = h, w
    s = min(nh / h, nw / w)
    ch, cw = min(nh, max(1, int(round(h * s)))), min(nw, max(1, int(round(w * s))))
    y0, x0 = (nh - ch) // 2, (nw - cw) // 2
    return Geometry((h, w), (nh, nw), (y0, x0, ch, cw))


def _place(img: np.ndarray, geo: Geometry, nearest: bool) -> np.ndarray:
    y0, x0, ch, cw = geo.box
    r = (resize_nearest if nearest else resize_bilinear)(img, ch, cw)
    if (ch, cw) == geo.net_hw:
        return r
    out = np.zeros(geo.net_hw + img.shape[2:], dtype=np.float32)
    out[y0:y0 + ch, x0:x0 + cw] = r
    return out


# ------------------------------------------------------------------ the model
@dataclass
class RawPrediction:
    """The model output resampled to the colour image geometry, in its own units/kind."""

    value: np.ndarray          # (H, W) float32: metres for metric models, else relative
    preprocess_s: float
    run_s: float
    postprocess_s: float


class DepthModel:
    """An onnxruntime session plus the spec's pre- and post-processing."""

    def __init__(self, spec: ModelSpec | str | Path, providers: Sequence[str] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        import onnxruntime as ort

        try:
            self.spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
        except SpecError as err:
            raise ModelError(str(err)) from err
        self.providers = resolve_providers(providers)
        path = Path(self.spec.model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist (named by the spec"
                             f"{' ' + str(self.spec.spec_path) if self.spec.spec_path else ''})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(0, int(intra_op_threads))
        opts.inter_op_num_threads = max(0, int(inter_op_threads))
        opts.log_severity_level = 3
        opts.graph_optimization_level = session_level(self.spec.graph_optimization)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=self.providers)
        except Exception as err:  # onnxruntime raises several types for bad files
            raise ModelError(f"cannot load model {path}: {str(err).splitlines()[0][:300]}") from err
        ins = [TensorInfo(i.name, tuple(i.shape), i.type) for i in self.session.get_inputs()]
        outs = [TensorInfo(o.name, tuple(o.shape), o.type) for o in self.session.get_outputs()]
        try:
            self.output_index = validate(self.spec, ins, outs)
        except SpecError as err:
            raise ModelError(f"spec {self.spec.spec_path or ''} does not match {path.name}: {err}") from err
        self.output_name = outs[self.output_index].name

    @property
    def kind(self) -> str:
        return self.spec.output.kind

    # -- pre-processing
    def _feed(self, inp: InputSpec, geo: Geometry, rgb: np.ndarray, depth: np.ndarray | None,
              valid: np.ndarray | None) -> np.ndarray:
        """One input tensor. Written in as few passes as possible: at 640x480 the node's whole
        overhead budget is a few milliseconds (bench/bench_inference.py)."""
        dtype = np.uint8 if inp.dtype == "uint8" else (np.float16 if inp.dtype == "float16" else np.float32)
        if inp.data == "rgb":
            img = rgb[..., ::-1] if inp.channel_order == "BGR" else rgb
            img = _place(img, geo, nearest=False) if geo.box[2:] != img.shape[:2] or geo.net_hw != img.shape[:2] else img
            mul = np.float32(inp.scale) / np.asarray(inp.std, np.float32)
            add = -np.asarray(inp.mean, np.float32) / np.asarray(inp.std, np.float32)
        else:
            if inp.data == "depth":
                img = np.zeros(rgb.shape[:2], np.float32) if depth is None else np.where(valid, depth, np.float32(0))
                img = img.astype(np.float32, copy=False)
                unit = DEPTH_UNITS[inp.units]
            else:  # mask
                img = np.zeros(rgb.shape[:2], np.float32) if valid is None else valid.view(np.uint8)
                unit = 1.0
            if geo.box[2:] != img.shape[:2] or geo.net_hw != img.shape[:2]:
                img = _place(img.astype(np.float32, copy=False), geo, nearest=True)
            img = img[..., None]
            mul = np.asarray([unit * inp.scale / inp.std[0]], np.float32)
            add = np.asarray([-inp.mean[0] / inp.std[0]], np.float32)
        h, w = geo.net_hw
        c = img.shape[2]
        if inp.layout == "NCHW":
            out = np.empty((1, c, h, w), dtype)
            view = out[0]
            src = img.transpose(2, 0, 1)
            mul, add = mul[:, None, None], add[:, None, None]
        else:
            out = np.empty((1, h, w, c), dtype)
            view, src = out[0], img
        identity = bool(np.all(mul == 1.0) and np.all(add == 0.0))
        if dtype == np.float32 and not identity:
            np.multiply(src, mul, out=view, casting="unsafe")
            if np.any(add != 0.0):
                view += add
        elif identity:
            np.copyto(view, src, casting="unsafe")
        else:
            view[...] = (src.astype(np.float32) * mul + add).astype(dtype)
        return out

    def prepare(self, rgb: np.ndarray, depth_m: np.ndarray | None = None
                ) -> tuple[dict[str, np.ndarray], Geometry]:
        """Feeds for the session and the geometry to map the output back.

        rgb: (H, W, 3) uint8 RGB order; depth_m: (H, W) metres in the same geometry,
        0 or NaN invalid."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise FrameError(f"colour image has shape {rgb.shape}; expected (H, W, 3)")
        h, w = rgb.shape[:2]
        valid = None
        if depth_m is not None:
            if depth_m.shape != (h, w):
                raise FrameError(f"depth {depth_m.shape[1]}x{depth_m.shape[0]} does not match colour "
                                 f"{w}x{h}; register depth to colour (aligned_depth_to_color)")
            valid = np.isfinite(depth_m) & (depth_m > 0)
        geo = plan_geometry(self.spec, h, w)
        return {i.name: self._feed(i, geo, rgb, depth_m, valid) for i in self.spec.inputs}, geo

    # -- post-processing
    def finish(self, out: np.ndarray, geo: Geometry) -> np.ndarray:
        """Network output -> (H, W) float32 at the colour geometry (metres if metric)."""
        a = np.asarray(out)
        sq = np.squeeze(a)
        if sq.ndim != 2:
            raise FrameError(f"model output '{self.output_name}' has shape {list(a.shape)}; expected one "
                             f"depth map (N=1, one channel)")
        nh, nw = geo.net_hw
        oh, ow = sq.shape
        if (oh, ow) != (nh, nw):
            if abs(oh / ow - nh / nw) > 0.02 * (nh / nw):
                raise FrameError(f"model output is {ow}x{oh}, input was {nw}x{nh}: aspect ratios differ")
            sq = resize_bilinear(sq.astype(np.float32), nh, nw)
        bad = ~np.isfinite(sq)
        if bad.any():
            raise FrameError(f"model output has {int(bad.sum())} non-finite values (NaN/inf) of {bad.size}")
        y0, x0, ch, cw = geo.box
        v = resize_bilinear(sq[y0:y0 + ch, x0:x0 + cw].astype(np.float32), *geo.image_hw)
        if self.kind == "metric_depth":
            v = v * (self.spec.output.scale / DEPTH_UNITS[self.spec.output.units])
        return np.ascontiguousarray(v, dtype=np.float32)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return self.session.run([self.output_name], feeds)[0]
        except Exception as err:  # e.g. a size that is not a multiple the graph needs
            raise FrameError(f"onnxruntime failed: {str(err).splitlines()[0][:300]}") from err

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray | None = None) -> RawPrediction:
        t0 = time.perf_counter()
        feeds, geo = self.prepare(rgb, depth_m)
        t1 = time.perf_counter()
        out = self.run(feeds)
        t2 = time.perf_counter()
        value = self.finish(out, geo)
        t3 = time.perf_counter()
        return RawPrediction(value, t1 - t0, t2 - t1, t3 - t2)
