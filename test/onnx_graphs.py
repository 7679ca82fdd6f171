"""Tiny ONNX graphs built with onnx.helper for model-spec and error tests.

Each graph's output is a known function of its inputs, so tests check numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def const(name: str, value: Sequence[float] | float | np.ndarray, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def channel_mean_nchw(path: Path, shape=(1, 3, "H", "W")) -> Path:
    """out (N,1,H,W) = mean over channels of rgb (N,3,H,W)."""
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["rgb"], ["out"], axes=[1], keepdims=1)], "mean",
        [helper.make_tensor_value_info("rgb", F, list(shape))],
        [helper.make_tensor_value_info("out", F, [shape[0], 1, shape[2], shape[3]])])
    return save(g, path)


def first_channel_nhwc(path: Path, shape=(1, 8, 8, 3)) -> Path:
    """out (N,H,W,1) = channel 0 of image (N,H,W,3)."""
    g = helper.make_graph(
        [helper.make_node("Slice", ["image", "s", "e", "a"], ["out"])], "first",
        [helper.make_tensor_value_info("image", F, list(shape))],
        [helper.make_tensor_value_info("out", F, [shape[0], shape[1], shape[2], 1])],
        [const("s", [0], np.int64), const("e", [1], np.int64), const("a", [3], np.int64)])
    return save(g, path)


def two_outputs(path: Path) -> Path:
    """depth_a = 2 * d, depth_b = 3 * d from rgb (unused but required) and depth."""
    g = helper.make_graph(
        [helper.make_node("Mul", ["depth", "two"], ["depth_a"]),
         helper.make_node("Mul", ["depth", "three"], ["depth_b"]),
         helper.make_node("ReduceMean", ["rgb"], ["rgb_mean"], axes=[1], keepdims=1)],
        "two",
        [helper.make_tensor_value_info("rgb", F, [1, 3, "H", "W"]),
         helper.make_tensor_value_info("depth", F, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("depth_a", F, [1, 1, "H", "W"]),
         helper.make_tensor_value_info("depth_b", F, [1, 1, "H", "W"]),
         helper.make_tensor_value_info("rgb_mean", F, [1, 1, "H", "W"])],
        [const("two", 2.0), const("three", 3.0)])
    return save(g, path)


def affine_of_depth(path: Path, a: float, b: float, inverse: bool) -> Path:
    """out = a * d + b, or (inverse) a / d + b: a relative (inverse) depth 'model'."""
    nodes = [helper.make_node("ReduceMean", ["rgb"], ["unused"], axes=[1], keepdims=1)]
    if inverse:
        nodes += [helper.make_node("Max", ["depth", "eps"], ["dc"]),
                  helper.make_node("Div", ["a", "dc"], ["q"])]
    else:
        nodes += [helper.make_node("Mul", ["depth", "a"], ["q"])]
    nodes += [helper.make_node("Add", ["q", "b"], ["out"])]
    g = helper.make_graph(
        nodes, "affine",
        [helper.make_tensor_value_info("rgb", F, [1, 3, "H", "W"]),
         helper.make_tensor_value_info("depth", F, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("out", F, [1, 1, "H", "W"]),
         helper.make_tensor_value_info("unused", F, [1, 1, "H", "W"])],
        [const("a", a), const("b", b), const("eps", 1e-3)])
    return save(g, path)


def nan_output(path: Path) -> Path:
    """out = sqrt(-1 - mean(rgb)): NaN everywhere."""
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["rgb"], ["m"], axes=[1], keepdims=1),
         helper.make_node("Sub", ["neg1", "m"], ["n"]),
         helper.make_node("Sqrt", ["n"], ["out"])], "nan",
        [helper.make_tensor_value_info("rgb", F, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("out", F, [1, 1, "H", "W"])], [const("neg1", -1.0)])
    return save(g, path)


def undeclared_channels(path: Path) -> Path:
    """out = rgb itself, declared with unknown shape: 3 channels appear only at run time."""
    g = helper.make_graph(
        [helper.make_node("Identity", ["rgb"], ["out"])], "wrong",
        [helper.make_tensor_value_info("rgb", F, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("out", F, ["N", "C", "H", "W"])])
    return save(g, path)


def write_spec(path: Path, model: Path, inputs: list[dict], output: dict,
               resize: str = "stretch") -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "model": str(model), "resize": resize,
                                    "inputs": inputs, "output": output}))
    return path


def inverted_depth(path: Path) -> Path:
    """out = 10 - depth: a 'relative depth' that in truth falls as the depth rises (the sign
    error of a disparity output declared as depth). rgb is an input the graph ignores."""
    g = helper.make_graph(
        [helper.make_node("Sub", ["ten", "depth"], ["out"])], "inverted",
        [helper.make_tensor_value_info("rgb", F, [1, 3, "H", "W"]),
         helper.make_tensor_value_info("depth", F, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("out", F, [1, 1, "H", "W"])],
        [const("ten", 10.0)])
    return save(g, path)
