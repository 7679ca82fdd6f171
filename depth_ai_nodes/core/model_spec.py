"""The YAML model spec: everything needed to feed an ONNX depth model and read its output.

A spec names each graph input (which data it takes: rgb / depth / mask, its layout,
size policy, channel order and normalisation), the output (name or index, and what
it means: metric depth, relative depth, or relative inverse depth / disparity) and
the resize policy. What the ONNX graph declares (names, ranks, static sizes, dtypes)
is checked against the spec, and a contradiction is refused with the reason, so a
wrong spec fails at start-up instead of producing silent garbage. ROS-free.

Example (models/depth_completion.yaml)::

    model: depth_completion.onnx          # relative to this file
    resize: stretch                       # or letterbox (keep aspect, pad)
    inputs:
      - {name: rgb, data: rgb, layout: NCHW, size: multiple_of_32, channel_order: RGB,
         scale: 0.00392156862745098, mean: [0, 0, 0], std: [1, 1, 1]}
      - {name: depth, data: depth, layout: NCHW, size: multiple_of_32, units: m}
      - {name: mask, data: mask, layout: NCHW, size: multiple_of_32}
    output: {name: depth_out, kind: metric_depth, units: m}
    graph_optimization: all               # onnxruntime's level: all | extended | basic | disabled
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

DATA_KINDS = ("rgb", "depth", "mask")
LAYOUTS = ("NCHW", "NHWC")
OUTPUT_KINDS = ("metric_depth", "relative_depth", "relative_inverse_depth")
LARGER = ("farther", "nearer")  # output.larger: which way a relative output grows
RESIZE_POLICIES = ("stretch", "letterbox")
CHANNEL_ORDERS = ("RGB", "BGR")
DTYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "uint8": "tensor(uint8)"}
DEPTH_UNITS = {"m": 1.0, "mm": 1000.0}
# onnxruntime's graph optimisation levels, by the names of its GraphOptimizationLevel
GRAPH_OPTIMIZATIONS = ("all", "extended", "basic", "disabled")


class SpecError(ValueError):
    """The spec is malformed or contradicts the ONNX graph; the message says what to fix."""


@dataclass(frozen=True)
class SizePolicy:
    """fixed (height x width), dynamic (any size) or multiple (H and W multiples of N)."""

    mode: str = "dynamic"
    height: int = 0
    width: int = 0
    multiple: int = 1

    @staticmethod
    def parse(value: Any) -> "SizePolicy":
        """'dynamic' | 'multiple_of_32' | [H, W] | {mode, height, width, multiple}."""
        if value is None or value == "dynamic":
            return SizePolicy("dynamic")
        if isinstance(value, str):
            m = re.fullmatch(r"multiple_of_(\d+)", value.strip())
            if m and int(m.group(1)) >= 1:
                return SizePolicy("multiple", multiple=int(m.group(1)))
            m = re.fullmatch(r"(\d+)x(\d+)", value.strip())  # HxW
            if m:
                return SizePolicy("fixed", int(m.group(1)), int(m.group(2)))
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return SizePolicy("fixed", int(value[0]), int(value[1]))
        if isinstance(value, dict):
            mode = value.get("mode", "fixed" if "height" in value else "dynamic")
            if mode == "fixed":
                return SizePolicy("fixed", int(value["height"]), int(value["width"]))
            if mode == "multiple":
                return SizePolicy("multiple", multiple=int(value.get("multiple", 1)))
            if mode == "dynamic":
                return SizePolicy("dynamic")
        raise SpecError(f"size {value!r} not understood; use 'dynamic', 'multiple_of_N', "
                        f"[height, width] or 'HxW'")

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) the network takes for an image of height x width."""
        if self.mode == "fixed":
            return self.height, self.width
        if self.mode == "multiple":
            n = self.multiple
            return max(n, int(round(height / n)) * n), max(n, int(round(width / n)) * n)
        return height, width


@dataclass(frozen=True)
class InputSpec:
    name: str
    data: str
    layout: str = "NCHW"
    size: SizePolicy = field(default_factory=SizePolicy)
    channel_order: str = "RGB"
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    dtype: str = "float32"
    units: str = "m"

    @property
    def channels(self) -> int:
        return 3 if self.data == "rgb" else 1


@dataclass(frozen=True)
class OutputSpec:
    name: str | None = None
    index: int | None = None
    kind: str = "metric_depth"
    units: str = "m"
    scale: float = 1.0  # metric outputs: metres = value * scale / units factor
    larger: str | None = None  # relative outputs: "farther" (depth-like) or "nearer" (disparity-like)

    @property
    def direction(self) -> str:
        """Which way a relative output grows: the spec's `larger`, else what the kind implies."""
        return self.larger or ("nearer" if self.kind == "relative_inverse_depth" else "farther")


@dataclass(frozen=True)
class ModelSpec:
    model_path: Path
    inputs: tuple[InputSpec, ...]
    output: OutputSpec
    resize: str = "stretch"
    name: str = ""
    spec_path: Path | None = None
    # onnxruntime's graph optimisation level for this model. "all" (onnxruntime's default)
    # adds the NCHWc layout pass, which helps wide convolutions but slows graphs of few-channel
    # convolutions and full-resolution elementwise ops (the shipped classical fill: 0.39-0.40
    # vs 0.67 of the old model's time), where "extended" is the faster choice.
    graph_optimization: str = "all"

    def input_for(self, data: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.data == data), None)

    @property
    def size(self) -> SizePolicy:
        return self.inputs[0].size

    @property
    def needs_depth(self) -> bool:
        return self.input_for("depth") is not None


def _choice(value: Any, allowed: Sequence[str], what: str) -> str:
    v = str(value)
    for a in allowed:
        if v.lower() == a.lower():
            return a
    raise SpecError(f"{what} {value!r} is not valid; use one of {', '.join(allowed)}")


def _floats(value: Any, n: int, what: str) -> tuple[float, ...]:
    vals = (value,) * n if isinstance(value, (int, float)) else tuple(value)
    if len(vals) == 1 and n > 1:
        vals = vals * n
    if len(vals) != n:
        raise SpecError(f"{what} needs {n} values, got {len(vals)}")
    return tuple(float(v) for v in vals)


def parse_spec(doc: dict[str, Any], base_dir: Path | None = None, spec_path: Path | None = None) -> ModelSpec:
    """Build a ModelSpec from a parsed YAML mapping (model path relative to base_dir)."""
    if not isinstance(doc, dict):
        raise SpecError("a model spec must be a YAML mapping with model, inputs and output")
    for key in ("model", "inputs", "output"):
        if key not in doc:
            raise SpecError(f"model spec has no '{key}'")
    base = base_dir or Path.cwd()
    model = Path(str(doc["model"])).expanduser()
    model = model if model.is_absolute() else base / model
    default_size = doc.get("size")
    raw_inputs = doc["inputs"]
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise SpecError("'inputs' must be a non-empty list")
    inputs = []
    for i, raw in enumerate(raw_inputs):
        if not isinstance(raw, dict) or "name" not in raw or "data" not in raw:
            raise SpecError(f"inputs[{i}] needs at least 'name' and 'data'")
        data = _choice(raw["data"], DATA_KINDS, f"inputs[{i}].data")
        ch = 3 if data == "rgb" else 1
        units = _choice(raw.get("units", "m"), tuple(DEPTH_UNITS), f"inputs[{i}].units")
        std = _floats(raw.get("std", 1.0), ch, f"inputs[{i}].std")
        if any(s == 0 for s in std):
            raise SpecError(f"inputs[{i}].std must not contain 0")
        inputs.append(InputSpec(
            name=str(raw["name"]), data=data,
            layout=_choice(raw.get("layout", "NCHW"), LAYOUTS, f"inputs[{i}].layout"),
            size=SizePolicy.parse(raw.get("size", default_size)),
            channel_order=_choice(raw.get("channel_order", "RGB"), CHANNEL_ORDERS, f"inputs[{i}].channel_order"),
            scale=float(raw.get("scale", 1.0 / 255.0 if data == "rgb" else 1.0)),
            mean=_floats(raw.get("mean", 0.0), ch, f"inputs[{i}].mean"), std=std,
            dtype=_choice(raw.get("dtype", "float32"), tuple(DTYPES), f"inputs[{i}].dtype"),
            units=units))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise SpecError(f"input names repeat: {names}")
    if not any(i.data == "rgb" for i in inputs):
        raise SpecError("the spec needs an input with data: rgb")
    if any(i.data == "mask" for i in inputs) and not any(i.data == "depth" for i in inputs):
        raise SpecError("a mask input needs a depth input too (the mask is depth validity)")
    sizes = {i.size for i in inputs}
    if len(sizes) > 1:
        raise SpecError(f"all inputs must share one size policy, got {sorted(map(str, sizes))}")
    raw_out = doc["output"]
    if isinstance(raw_out, (str, int)):
        raw_out = {"name": raw_out} if isinstance(raw_out, str) else {"index": raw_out}
    if not isinstance(raw_out, dict):
        raise SpecError("'output' must be a mapping with name or index, and kind")
    if ("name" in raw_out) == ("index" in raw_out):
        raise SpecError("output needs exactly one of 'name' or 'index'")
    raw_kind = raw_out.get("kind", "metric_depth")
    larger = raw_out.get("larger")
    if larger is not None:
        larger = _choice(larger, LARGER, "output.larger")
    if raw_kind == "relative":  # the direction says which relative kind
        if larger is None:
            raise SpecError("output.kind relative needs output.larger: farther (the output grows with "
                            "distance, like depth) or nearer (like disparity / inverse depth)")
        raw_kind = "relative_depth" if larger == "farther" else "relative_inverse_depth"
    kind = _choice(raw_kind, OUTPUT_KINDS, "output.kind")
    if larger is not None:
        implied = {"relative_depth": "farther", "relative_inverse_depth": "nearer"}.get(kind)
        if implied is None:
            raise SpecError(f"output.larger applies to relative outputs; output.kind is {kind}")
        if implied != larger:
            raise SpecError(f"output.larger: {larger} contradicts output.kind {kind} (whose larger values "
                            f"are {implied}); use kind relative with larger: {larger}")
    out_units = _choice(raw_out.get("units", "m"), tuple(DEPTH_UNITS), "output.units")
    output = OutputSpec(name=str(raw_out["name"]) if "name" in raw_out else None,
                        index=int(raw_out["index"]) if "index" in raw_out else None,
                        kind=kind, units=out_units, scale=float(raw_out.get("scale", 1.0)), larger=larger)
    resize = _choice(doc.get("resize", "stretch"), RESIZE_POLICIES, "resize")
    level = _choice(doc.get("graph_optimization", "all"), GRAPH_OPTIMIZATIONS, "graph_optimization")
    return ModelSpec(model_path=model, inputs=tuple(inputs), output=output, resize=resize,
                     name=str(doc.get("name", model.stem)), spec_path=spec_path, graph_optimization=level)


def load_spec(path: str | Path) -> ModelSpec:
    """Read a spec YAML file; a path to an .onnx file is refused with a hint."""
    p = Path(path).expanduser()
    if p.suffix.lower() == ".onnx":
        raise SpecError(f"{p} is an ONNX file; pass its YAML spec (see docs/inference.md)")
    if not p.is_file():
        raise SpecError(f"model spec {p} does not exist")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"model spec {p} is not valid YAML: {err}") from err
    return parse_spec(doc, p.parent, p)


# ------------------------------------------------------------------ graph checks
@dataclass(frozen=True)
class TensorInfo:
    """What the graph declares for one tensor: shape entries int (static) or None/str."""

    name: str
    shape: tuple[Any, ...]
    type: str  # onnxruntime's 'tensor(float)' etc.


def _static(v: Any) -> int | None:
    return v if isinstance(v, int) and v > 0 else None


def validate(spec: ModelSpec, graph_inputs: Sequence[TensorInfo],
             graph_outputs: Sequence[TensorInfo]) -> int:
    """Check the spec against the graph; return the output's index. Raises SpecError."""
    by_name = {t.name: t for t in graph_inputs}
    missing = [i.name for i in spec.inputs if i.name not in by_name]
    if missing:
        raise SpecError(f"spec inputs {missing} are not in the graph, whose inputs are "
                        f"{list(by_name)}")
    unfed = [n for n in by_name if n not in {i.name for i in spec.inputs}]
    if unfed:
        raise SpecError(f"graph inputs {unfed} are not in the spec; every graph input needs "
                        f"an entry (data: rgb / depth / mask)")
    for inp in spec.inputs:
        t = by_name[inp.name]
        where = f"input '{inp.name}'"
        if len(t.shape) != 4:
            raise SpecError(f"{where}: the graph declares rank {len(t.shape)} {list(t.shape)}, "
                            f"the spec needs a 4-D {inp.layout} tensor")
        if t.type != DTYPES[inp.dtype]:
            raise SpecError(f"{where}: the graph declares {t.type}, the spec says dtype "
                            f"{inp.dtype} ({DTYPES[inp.dtype]})")
        c_axis, h_axis, w_axis = (1, 2, 3) if inp.layout == "NCHW" else (3, 1, 2)
        c = _static(t.shape[c_axis])
        if c is not None and c != inp.channels:
            other = (3, 1, 2) if inp.layout == "NCHW" else (1, 2, 3)
            hint = ""
            if _static(t.shape[other[0]]) == inp.channels:
                hint = f"; the graph looks {'NHWC' if inp.layout == 'NCHW' else 'NCHW'}"
            raise SpecError(f"{where}: layout {inp.layout} puts channels on axis {c_axis}, where "
                            f"the graph declares {c}; data {inp.data} has {inp.channels}{hint}")
        other_c = _static(t.shape[3 if inp.layout == "NCHW" else 1])
        if c is None and other_c == inp.channels:
            other = "NHWC" if inp.layout == "NCHW" else "NCHW"
            raise SpecError(f"{where}: the spec says layout {inp.layout}, but the graph declares "
                            f"{list(t.shape)}, which is {other} with {inp.channels} channel(s)")
        h, w = _static(t.shape[h_axis]), _static(t.shape[w_axis])
        size = inp.size
        if size.mode == "fixed":
            if (h is not None and h != size.height) or (w is not None and w != size.width):
                raise SpecError(f"{where}: the spec says fixed {size.height}x{size.width}, the graph "
                                f"declares {t.shape[h_axis]}x{t.shape[w_axis]}")
        elif h is not None or w is not None:
            raise SpecError(f"{where}: the spec says size {size.mode}, but the graph fixes "
                            f"{t.shape[h_axis]}x{t.shape[w_axis]}; use size: "
                            f"[{t.shape[h_axis]}, {t.shape[w_axis]}]")
        if size.mode == "multiple":
            pass  # the graph cannot declare it; a wrong N fails at the first run with the reason
    out = spec.output
    if out.name is not None:
        names = [t.name for t in graph_outputs]
        if out.name not in names:
            raise SpecError(f"output '{out.name}' is not in the graph, whose outputs are {names}")
        index = names.index(out.name)
    else:
        if not 0 <= (out.index or 0) < len(graph_outputs):
            raise SpecError(f"output index {out.index} is out of range: the graph has "
                            f"{len(graph_outputs)} outputs")
        index = int(out.index or 0)
    t = graph_outputs[index]
    if t.type not in ("tensor(float)", "tensor(float16)", "tensor(double)"):
        raise SpecError(f"output '{t.name}' is {t.type}; a depth output must be floating point")
    if len(t.shape) not in (2, 3, 4):
        raise SpecError(f"output '{t.name}' has rank {len(t.shape)}; expected (H,W), (N,H,W), "
                        f"(N,1,H,W) or (N,H,W,1)")
    if len(t.shape) == 4 and _static(t.shape[3]) != 1 and _static(t.shape[1]) not in (None, 1):
        # (N, C, H, W) unless the last axis is a static 1 (N, H, W, 1): C must be 1 (or symbolic)
        raise SpecError(f"output '{t.name}' has shape {list(t.shape)}: {t.shape[1]} channels; a depth "
                        f"output has one, as (N,1,H,W) or (N,H,W,1)")
    return index
