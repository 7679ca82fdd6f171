"""The one inference path shared by depth_inference_node and `depth-ai infer`/`eval`.

colour (+ optional sensor depth, + optional sparse depth, all in the colour
geometry) -> model -> metric alignment when the output is relative -> metric depth
(float32 m, NaN invalid, REP-118) and a 0..1 confidence, with the per-frame figures
(timings, scale, shift, residual, references). ROS-free.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .depth_model import DepthModel, FrameError
from .edge_snap import DEFAULT_WINDOW, check_window, snap_to_edges
from .hole_masks import box_mean
from .metric_alignment import AlignmentConfig, AlignmentResult, MetricAligner

ALIGN_MODES = ("auto", "on", "off")
REFERENCES = ("auto", "depth", "sparse")


@dataclass
class PipelineConfig:
    align: str = "auto"              # auto: align relative outputs only; on: metric too; off: never
    reference: str = "auto"          # auto: sparse depth if given, else sensor depth
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    min_depth_m: float = 0.1         # output outside [min, max] is published as NaN (invalid)
    max_depth_m: float = 20.0
    support_radius_px: int = 8       # confidence falls with distance from reference depth
    # completion models fed dense sensor depth: a fill left between the two sides of a depth
    # edge in this window of measured depth takes the side measured closest to it
    # (core/edge_snap.py); 0: off
    edge_snap_px: int = DEFAULT_WINDOW


@dataclass
class PipelineResult:
    depth: np.ndarray                # (H, W) float32 metres, NaN invalid
    confidence: np.ndarray           # (H, W) float32 0..1
    alignment: AlignmentResult
    preprocess_s: float
    run_s: float
    postprocess_s: float
    align_s: float
    aligned: bool
    warnings: list[str] = field(default_factory=list)
    edge_snapped: int = 0            # filled pixels moved off a depth edge this frame

    @property
    def total_s(self) -> float:
        return self.preprocess_s + self.run_s + self.postprocess_s + self.align_s


def local_support(valid: np.ndarray, radius: int) -> np.ndarray:
    """Fraction of valid reference pixels around each pixel (about radius px), float32.

    Computed on blocks of ~radius/2 px and expanded back: a cheap approximation of a box
    filter (a full-resolution one cost more than the rest of the node's overhead)."""
    h, w = valid.shape
    b = max(1, radius // 2)
    hb, wb = -(-h // b), -(-w // b)
    pad = np.zeros((hb * b, wb * b), np.float32)
    pad[:h, :w] = valid
    blocks = pad.reshape(hb, b, wb, b).mean(axis=(1, 3))
    sm = box_mean(blocks, 1).astype(np.float32)
    return np.repeat(np.repeat(sm, b, axis=0), b, axis=1)[:h, :w]


def _valid(d: np.ndarray | None) -> np.ndarray | None:
    return None if d is None else (np.isfinite(d) & (d > 0))


class DepthPipeline:
    """Model + alignment + confidence. Not thread-safe: one worker calls process()."""

    def __init__(self, model: DepthModel, config: PipelineConfig | None = None) -> None:
        self.model = model
        self.config = config or PipelineConfig()
        if self.config.align not in ALIGN_MODES:
            raise ValueError(f"align {self.config.align!r}; use one of {ALIGN_MODES}")
        if self.config.reference not in REFERENCES:
            raise ValueError(f"reference {self.config.reference!r}; use one of {REFERENCES}")
        check_window(self.config.edge_snap_px)
        space = "inverse_depth" if model.kind == "relative_inverse_depth" else "depth"
        self.config.alignment.space = space
        self.aligner = MetricAligner(self.config.alignment)

    @property
    def aligns(self) -> bool:
        a = self.config.align
        return a == "on" or (a == "auto" and self.model.kind != "metric_depth")

    def _check(self, name: str, d: np.ndarray | None, hw: tuple[int, int]) -> np.ndarray | None:
        if d is None:
            return None
        if d.ndim != 2 or d.shape != hw:
            raise FrameError(f"{name} depth is {d.shape[::-1]} (w, h) but colour is {hw[::-1]}; "
                             f"it must be registered to the colour image")
        return np.asarray(d, dtype=np.float32)

    def process(self, rgb: np.ndarray, depth_m: np.ndarray | None = None,
                sparse_m: np.ndarray | None = None) -> PipelineResult:
        """rgb (H, W, 3) uint8; depth_m / sparse_m (H, W) metres, 0/NaN invalid."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise FrameError(f"colour image has shape {rgb.shape}; expected (H, W, 3)")
        hw = rgb.shape[:2]
        depth_m = self._check("sensor", depth_m, hw)
        sparse_m = self._check("sparse", sparse_m, hw)
        warnings: list[str] = []
        model_depth = depth_m if depth_m is not None else sparse_m
        if self.model.spec.needs_depth and model_depth is None:
            raise FrameError("this model takes depth as input, and no depth (sensor or sparse) came "
                             "with the frame")
        raw = self.model.predict(rgb, model_depth if self.model.spec.needs_depth else None)
        t0 = time.perf_counter()
        ref_name = self.config.reference
        if ref_name == "auto":
            ref = sparse_m if sparse_m is not None else depth_m
        else:
            ref = sparse_m if ref_name == "sparse" else depth_m
        ref_valid = _valid(ref)
        aligned = self.aligns
        if aligned:
            res = self.aligner.update(raw.value, ref)
            if res.ok:
                depth = self.aligner.apply(raw.value, res)
                if res.confidence < 0.3:
                    warnings.append(f"low alignment confidence {res.confidence:.2f} ({res.references} "
                                    f"references{', ' + res.reason if res.reason else ''})")
            else:
                depth = np.full(hw, np.nan, np.float32)
                if res.wrong_sign:
                    out = self.model.spec.output
                    other = "nearer" if out.direction == "farther" else "farther"
                    warnings.append(f"{res.reason}: the model's output runs the opposite way to its "
                                    f"spec's output.kind '{self.model.kind}' (output.larger: "
                                    f"{out.direction}); set output.larger: {other} (kind: relative) in "
                                    f"{self.model.spec.spec_path or 'the spec'}")
                else:
                    warnings.append(f"no metric alignment yet: {res.reason}; depth published as invalid")
        else:
            depth = raw.value.copy()
            has_ref = ref_valid is not None and bool(ref_valid.any())
            res = AlignmentResult(references=int(ref_valid.sum()) if has_ref else 0,
                                  confidence=1.0, ok=True, reason="metric output")
            if self.model.spec.needs_depth and not has_ref:
                warnings.append("no valid input depth in this frame: completion has nothing to complete")
                res = AlignmentResult(confidence=0.1, ok=True, reason="no valid input depth")
        c = self.config
        snapped = None
        # dense sensor depth only: between the scan lines of sparse (LiDAR) depth a window's two
        # "sides" are often one slanted surface, not the two sides of an edge
        if c.edge_snap_px and self.model.spec.needs_depth and depth_m is not None:
            depth, snapped = snap_to_edges(depth, depth_m, c.edge_snap_px)
        bad = ~np.isfinite(depth) | (depth < c.min_depth_m) | (depth > c.max_depth_m)
        depth[bad] = np.nan
        if ref_valid is not None and (self.model.spec.needs_depth or aligned):
            support = np.minimum(np.float32(1.0), 4.0 * local_support(ref_valid, c.support_radius_px))
            conf = np.float32(res.confidence) * (np.float32(0.4) + np.float32(0.6) * support)
        else:
            conf = np.full(hw, res.confidence * 0.5)
        conf = conf.astype(np.float32)
        if snapped is not None:  # a side was picked for these: an edge decision, half as sure
            conf[snapped] *= np.float32(0.5)
        conf[bad] = 0.0
        t1 = time.perf_counter()
        return PipelineResult(depth.astype(np.float32, copy=False), conf, res, raw.preprocess_s, raw.run_s,
                              raw.postprocess_s, t1 - t0, aligned, warnings,
                              int(snapped.sum()) if snapped is not None else 0)
