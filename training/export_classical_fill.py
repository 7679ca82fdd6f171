"""The shipped completion model's classical fill on its own: models/depth_fill_classical.onnx.

The completion model (models/depth_completion.onnx) first fills the holes classically (six
rings of first-order plane fits, then push-pull; no weights), then a small network corrects
that fill: out = fill * exp(tanh(residual)). On the held-out rgbd-train split the correction
gains nothing (RMSE / Telea 0.979 with it and without it, pooled), and it costs about 30 % of
session.run (models/MODEL_CARD.md, bench/RESULTS.md). So the default model is that fill alone.

This script writes the fill out as an ONNX graph by hand, with the same float32 arithmetic as
the completion model's own (training code of commit 5507c19: `peel_fill`, `push_pull`, then
the floor of 0.05 m) and without what that export computed for the network or recomputed:
  - the moment kernels are constants (that graph built them with ScatterND on every run), and
    the moments of c and of d are two small convolutions each, not one dense pair that
    multiplied mostly zeros (the same sums);
  - the convolutions read the depth d, not d * c (d is 0 wherever c is 0);
  - a ring is written as d + ring * val and c = maxpool(c) (c is 0 / 1 and d is 0 on the
    ring, so these equal where(ring, val, d) and where(ring, 1, c));
  - the Cramer cofactors are computed once (the export computed two of them twice).
322 nodes instead of 1,170. With the spec's `graph_optimization: extended` (no NCHWc layout
pass, which slows this graph of few-channel convolutions and full-resolution elementwise ops)
session.run takes 0.39-0.40x the old 106 ms model's time at 640x480, 2 threads, against
0.65-0.69x for the cut it replaces (`bench/bench_model_cost.py`, bench/RESULTS.md). Its output
is bit-identical to the cut of depth_completion.onnx before its network (`classical_fill_cut`),
and test/test_classical_fill.py checks both that and that the shipped file is this script's
output. Deterministic; needs only onnx.

    pip install -e '.[train]'     # onnx
    python training/export_classical_fill.py [--out models/depth_fill_classical.onnx]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

PEEL_ITERS = 6      # rings filled by first-order extrapolation before push-pull takes over
PEEL_RADIUS = 3     # plane-fit window radius (pixels)
PEEL_SIGMA = 2.0    # Gaussian applicability of the plane fit (pixels)
PEEL_RIDGE = 0.01   # pulls poorly constrained slopes toward zero
LEVELS = 5          # push-pull octaves: height and width must be multiples of 2 ** LEVELS
MIN_DEPTH = 0.05    # the output's floor (metres), as in the completion model
# The nine moments of the plane fit, from validity c: m00 m10 m01 m20 m11 m02, and from depth d:
# b0 b1 b2, each (horizontal order, vertical order) of the kernels g_k = Gaussian * (x / r)^k.
C_MOMENTS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))
D_MOMENTS = ((0, 0), (1, 0), (0, 1))


def moment_kernels() -> dict[str, np.ndarray]:
    """The separable moment kernels, with the float32 values the completion model's export
    computed (the Gaussian correctly rounded, then float32 products): horizontal c -> 3
    orders and d -> 2 (1 x 7), then vertical 3 -> the 6 moments of c and 2 -> the 3 of d
    (7 x 1). Two small convolutions per input instead of the export's dense 2 -> 5 -> 9,
    which multiplied mostly zeros: the same sums, 0.53x the multiply-adds."""
    r = PEEL_RADIUS
    x = np.arange(-r, r + 1, dtype=np.float32)
    g = np.exp(-(x.astype(np.float64) ** 2) / (2 * PEEL_SIGMA ** 2)).astype(np.float32)
    gk = [g, g * x / np.float32(r), g * (x / np.float32(r)) ** 2]

    def vertical(moments: tuple, orders: int) -> np.ndarray:
        k = np.zeros((len(moments), orders, 2 * r + 1, 1), np.float32)
        for o, (i, j) in enumerate(moments):
            k[o, i, :, 0] = gk[j]
        return k

    return {"c_horizontal": np.stack(gk)[:, None, None, :], "d_horizontal": np.stack(gk[:2])[:, None, None, :],
            "c_vertical": vertical(C_MOMENTS, 3), "d_vertical": vertical(D_MOMENTS, 2)}


class _Graph:
    """Nodes and constants, named in order of creation."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._consts: dict[tuple, str] = {}

    def const(self, value, dtype=np.float32) -> str:
        from onnx import numpy_helper

        key = (np.dtype(dtype).str, repr(value))
        if key not in self._consts:
            self._consts[key] = f"const{len(self._consts)}"
            self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), self._consts[key]))
        return self._consts[key]

    def tensor(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs):
        from onnx import helper

        name = f"{op_type.lower()}{len(self.nodes)}"
        outs = [name] if outputs == 1 else [f"{name}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs


def build_classical_fill():
    """The ModelProto: rgb (1, 3, H, W; declared as in depth_completion.yaml, unused), depth
    (1, 1, H, W) metres, mask (1, 1, H, W) 1 = valid -> depth_out (1, 1, H, W) metres, dense."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    kernels = {name: g.tensor(name, k) for name, k in moment_kernels().items()}

    def mul(a: str, b: str) -> str:
        return g.op("Mul", a, b)

    def add(a: str, b: str) -> str:
        return g.op("Add", a, b)

    def sub(a: str, b: str) -> str:
        return g.op("Sub", a, b)

    def floor(a: str, lo: float) -> str:
        return g.op("Clip", a, g.const(lo), "")

    valid = mul("mask", g.op("Cast", g.op("Greater", "depth", g.const(0.0)), to=TensorProto.FLOAT))
    d, c = mul("depth", valid), valid
    span, r = 2 * PEEL_RADIUS + 1, PEEL_RADIUS

    def moments(image: str, which: str, n: int) -> list[str]:
        rows = g.op("Conv", image, kernels[f"{which}_horizontal"], kernel_shape=[1, span], pads=[0, r, 0, r])
        both = g.op("Conv", rows, kernels[f"{which}_vertical"], kernel_shape=[span, 1], pads=[r, 0, r, 0])
        return g.op("Split", both, axis=1, outputs=n)

    for _ in range(PEEL_ITERS):  # one ring of the hole borders at a time, inward
        m00, m10, m01, m20, m11, m02 = moments(c, "c", len(C_MOMENTS))
        b0, b1, b2 = moments(d, "d", len(D_MOMENTS))
        ridge = mul(g.const(PEEL_RIDGE), m00)
        a11, a22 = add(m20, ridge), add(m02, ridge)
        c0 = sub(mul(a11, a22), mul(m11, m11))  # the cofactors of the 3 x 3 normal equations
        c1 = sub(mul(m10, a22), mul(m11, m01))
        c2 = sub(mul(m10, m11), mul(a11, m01))
        det = add(sub(mul(m00, c0), mul(m10, c1)), mul(m01, c2))
        num = add(sub(mul(b0, c0), mul(b1, c1)), mul(b2, c2))
        mean = g.op("Div", b0, floor(m00, 1e-12))  # zeroth order (weighted mean)
        plane = g.op("Div", num, floor(det, 1e-12))
        # a plane may not run away from its neighbourhood: at most +-50 % of the mean
        bounded = g.op("Min", g.op("Max", plane, mul(g.const(0.5), mean)), mul(g.const(1.5), mean))
        val = g.op("Where", g.op("Greater", det, g.const(1e-9)), bounded, mean)
        grown = g.op("MaxPool", c, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        d = add(d, mul(sub(grown, c), val))  # the ring (grown - c) takes val; d is 0 there
        c = grown
    # push-pull (multi-scale normalised convolution) for what the rings did not reach
    nums, dens = [d], [c]
    for _ in range(LEVELS):
        nums.append(g.op("AveragePool", nums[-1], kernel_shape=[2, 2], strides=[2, 2]))
        dens.append(g.op("AveragePool", dens[-1], kernel_shape=[2, 2], strides=[2, 2]))
    axes = g.const([2, 3], np.int64)
    gmean = g.op("Div", g.op("ReduceSum", nums[0], axes, keepdims=1),
                 floor(g.op("ReduceSum", dens[0], axes, keepdims=1), 1e-6))
    rest = g.op("Where", g.op("Greater", dens[-1], g.const(1e-6)), g.op("Div", nums[-1], floor(dens[-1], 1e-6)),
                gmean)
    for lvl in range(LEVELS - 1, -1, -1):
        up = g.op("Resize", rest, "", g.const([1.0, 1.0, 2.0, 2.0]), mode="linear",
                  coordinate_transformation_mode="half_pixel")
        w = g.op("Clip", mul(dens[lvl], g.const(4.0)), "", g.const(1.0))
        here = g.op("Div", nums[lvl], floor(dens[lvl], 1e-6))
        rest = add(mul(w, here), mul(sub(g.const(1.0), w), up))
    fill = g.op("Where", g.op("Greater", c, g.const(0.5)), d, rest)
    g.nodes.append(helper.make_node("Clip", [fill, g.const(MIN_DEPTH), ""], ["depth_out"], name="depth_out"))

    def image(name: str, channels: int):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, "height", "width"])

    graph = helper.make_graph(g.nodes, "depth_fill_classical", [image("rgb", 3), image("depth", 1), image("mask", 1)],
                              [image("depth_out", 1)], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="depth_ai_nodes",
                              doc_string="The classical fill of depth_completion.onnx (first-order peel + push-pull), "
                                         "written out by training/export_classical_fill.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def classical_fill_cut(src: Path):
    """The ModelProto of `src` (the completion model) cut at its fill: the input of its last
    node (a Mul) that is not the network's exp(tanh(residual)). The reference the built graph
    is checked against."""
    import onnx
    from onnx import helper, utils

    model = onnx.load(str(src))
    graph = model.graph
    last = graph.node[-1]
    out_name = graph.output[0].name
    if last.op_type != "Mul" or list(last.output) != [out_name]:
        raise ValueError(f"{src}: expected the graph to end in out = fill * correction (a Mul); "
                         f"it ends in {last.op_type} -> {list(last.output)}")
    producers = {o: n for n in graph.node for o in n.output}
    fills = [i for i in last.input if producers.get(i) is None or producers[i].op_type != "Exp"]
    if len(fills) != 1:
        raise ValueError(f"{src}: cannot tell the fill from the correction among {list(last.input)}")
    extractor = utils.Extractor(onnx.shape_inference.infer_shapes(model))  # it needs value_info
    cut = extractor.extract_model([i.name for i in graph.input], fills)
    cut.graph.node.append(helper.make_node("Identity", fills, [out_name], name="depth_out_identity"))
    cut.graph.output[0].name = out_name
    onnx.checker.check_model(cut)
    return cut


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "models" / "depth_fill_classical.onnx")
    args = p.parse_args()
    import onnx

    onnx.save(build_classical_fill(), str(args.out))
    print(f"{args.out}: {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
