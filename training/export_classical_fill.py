"""The shipped completion model's classical part on its own: models/depth_fill_classical.onnx.

The shipped graph (models/depth_completion.onnx) first fills the holes classically (six rings
of first-order plane fits, then push-pull; no weights), then a small network corrects that
fill: out = fill * exp(tanh(residual)). On the held-out rgbd-train split the correction gains
nothing (RMSE / Telea 0.979 with it and without it, pooled), and it costs about 30 % of
session.run (models/MODEL_CARD.md, bench/RESULTS.md). This script cuts the graph at the fill,
so the same classical fill can run without the network. Deterministic: the shipped file is
this script's output, and test/test_classical_fill.py checks that it still is.

    pip install -e '.[train]'     # onnx
    python training/export_classical_fill.py [--src models/depth_completion.onnx] [--out models/depth_fill_classical.onnx]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def classical_fill(src: Path):
    """The ModelProto of `src` cut at the pre-fill: the input of its last node (a Mul) that is
    not the network's exp(tanh(residual)), renamed to the model's output name."""
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
    cut.graph.name = "depth_fill_classical"
    del cut.metadata_props[:]
    cut.doc_string = ("The classical part of depth_completion.onnx (first-order peel + push-pull), "
                      "cut before its network by training/export_classical_fill.py")
    onnx.checker.check_model(cut)
    return cut


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", type=Path, default=ROOT / "models" / "depth_completion.onnx")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "depth_fill_classical.onnx")
    args = p.parse_args()
    import onnx

    onnx.save(classical_fill(args.src), str(args.out))
    print(f"{args.out}: {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
