"""Model spec handling on small ONNX graphs built here: layouts, sizes, outputs, kinds, numbers."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx_graphs as G  # noqa: E402

from depth_ai_nodes.core.depth_model import DepthModel, ModelError  # noqa: E402
from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig  # noqa: E402
from depth_ai_nodes.core.model_spec import SizePolicy, SpecError, load_spec  # noqa: E402


def rgb_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_nchw_dynamic_channel_mean_numbers(tmp_path):
    onnx_path = G.channel_mean_nchw(tmp_path / "mean.onnx")
    spec = G.write_spec(tmp_path / "mean.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb", "layout": "NCHW", "size": "dynamic",
                          "scale": 1.0, "mean": [10, 20, 30], "std": [2, 4, 5]}],
                        {"name": "out", "kind": "metric_depth", "units": "m"})
    model = DepthModel(spec)
    rgb = rgb_image(37, 53)  # odd sizes: dynamic means no resize at all
    got = model.predict(rgb).value
    expect = ((rgb.astype(np.float32) - [10, 20, 30]) / [2, 4, 5]).mean(axis=2)
    assert got.shape == (37, 53)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-4)


def test_bgr_channel_order_and_mm_output(tmp_path):
    onnx_path = G.first_channel_nhwc(tmp_path / "first.onnx", shape=(1, "H", "W", 3))
    spec = G.write_spec(tmp_path / "first.yaml", onnx_path,
                        [{"name": "image", "data": "rgb", "layout": "NHWC", "channel_order": "BGR",
                          "scale": 1.0}],
                        {"index": 0, "kind": "metric_depth", "units": "mm"})
    rgb = rgb_image(16, 24, 1)
    got = DepthModel(spec).predict(rgb).value
    # channel 0 of BGR is blue; output in mm -> metres
    np.testing.assert_allclose(got, rgb[..., 2].astype(np.float32) / 1000.0, rtol=1e-6)


def test_nhwc_fixed_size_stretch_and_letterbox(tmp_path):
    onnx_path = G.first_channel_nhwc(tmp_path / "fixed.onnx", shape=(1, 8, 8, 3))
    inp = [{"name": "image", "data": "rgb", "layout": "NHWC", "size": [8, 8], "scale": 1.0}]
    # a 16x32 image of four vertical bands: stretch maps back exactly band by band
    rgb = np.zeros((16, 32, 3), np.uint8)
    for i in range(4):
        rgb[:, 8 * i:8 * i + 8, 0] = 40 * (i + 1)
    stretch = DepthModel(G.write_spec(tmp_path / "s.yaml", onnx_path, inp, {"name": "out"}))
    got = stretch.predict(rgb).value
    assert got.shape == (16, 32)
    for i in range(4):  # band centres survive the down/up resampling
        assert got[8, 8 * i + 4] == pytest.approx(40 * (i + 1), abs=1e-3)
    letter = DepthModel(G.write_spec(tmp_path / "l.yaml", onnx_path, inp, {"name": "out"},
                                     resize="letterbox"))
    feeds, geo = letter.prepare(rgb)
    assert geo.net_hw == (8, 8) and geo.box == (2, 0, 4, 8)   # 2:1 image in a square: pad rows
    assert np.all(feeds["image"][0, :2] == 0) and np.all(feeds["image"][0, 6:] == 0)
    got = letter.predict(rgb).value
    assert got.shape == (16, 32)
    for i in range(4):
        assert got[8, 8 * i + 4] == pytest.approx(40 * (i + 1), abs=1e-3)


def test_multiple_of_n_size_policy():
    s = SizePolicy.parse("multiple_of_32")
    assert s.mode == "multiple" and s.network_size(480, 640) == (480, 640)
    assert s.network_size(470, 650) == (480, 640)
    assert SizePolicy.parse([518, 518]).network_size(480, 640) == (518, 518)
    assert SizePolicy.parse("dynamic").network_size(7, 9) == (7, 9)
    with pytest.raises(SpecError, match="multiple_of_N"):
        SizePolicy.parse("sometimes")


def test_several_outputs_by_name_and_index(tmp_path):
    onnx_path = G.two_outputs(tmp_path / "two.onnx")
    inputs = [{"name": "rgb", "data": "rgb"}, {"name": "depth", "data": "depth"}]
    depth = np.random.default_rng(2).uniform(0.5, 4.0, (12, 20)).astype(np.float32)
    depth[3, 4] = 0.0  # invalid in -> 0 fed to the graph
    rgb = rgb_image(12, 20)
    by_name = DepthModel(G.write_spec(tmp_path / "b.yaml", onnx_path, inputs, {"name": "depth_b"}))
    np.testing.assert_allclose(by_name.predict(rgb, depth).value, 3 * depth, rtol=1e-6)
    by_index = DepthModel(G.write_spec(tmp_path / "a.yaml", onnx_path, inputs, {"index": 0}))
    np.testing.assert_allclose(by_index.predict(rgb, depth).value, 2 * depth, rtol=1e-6)
    with pytest.raises(ModelError, match="out of range"):
        DepthModel(G.write_spec(tmp_path / "c.yaml", onnx_path, inputs, {"index": 3}))
    with pytest.raises(ModelError, match="not in the graph"):
        DepthModel(G.write_spec(tmp_path / "d.yaml", onnx_path, inputs, {"name": "depth_c"}))


@pytest.mark.parametrize("kind,inverse", [("relative_depth", False), ("relative_inverse_depth", True)])
def test_relative_kinds_become_metric_through_alignment(tmp_path, kind, inverse):
    """A 'model' whose output is an affine function of depth (or inverse depth): the
    pipeline must recover metric depth from the sensor's own valid pixels."""
    onnx_path = G.affine_of_depth(tmp_path / "aff.onnx", a=0.37, b=0.2, inverse=inverse)
    spec = G.write_spec(tmp_path / "aff.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb"}, {"name": "depth", "data": "depth"}],
                        {"name": "out", "kind": kind})
    pipe = DepthPipeline(DepthModel(spec), PipelineConfig(min_depth_m=0.05, max_depth_m=50))
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.8, 6.0, (30, 40)).astype(np.float32)
    res = pipe.process(rgb_image(30, 40), truth)
    assert res.aligned and res.alignment.ok
    np.testing.assert_allclose(res.depth, truth, rtol=2e-3)
    assert res.alignment.references == truth.size
    assert res.alignment.confidence > 0.5


def test_metric_kind_is_not_realigned(tmp_path):
    onnx_path = G.affine_of_depth(tmp_path / "m.onnx", a=2.0, b=0.0, inverse=False)
    spec = G.write_spec(tmp_path / "m.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb"}, {"name": "depth", "data": "depth"}],
                        {"name": "out", "kind": "metric_depth"})
    d = np.full((8, 8), 1.5, np.float32)
    res = DepthPipeline(DepthModel(spec), PipelineConfig()).process(rgb_image(8, 8), d)
    assert not res.aligned
    np.testing.assert_allclose(res.depth, 3.0, rtol=1e-6)


@pytest.mark.parametrize("inputs,output,match", [
    ([{"name": "rgb", "data": "rgb", "layout": "NHWC"}], {"name": "out"}, "layout NHWC"),
    ([{"name": "rgb", "data": "rgb", "size": [64, 64]}], {"name": "out"}, None),  # dynamic graph: ok
    ([{"name": "img", "data": "rgb"}], {"name": "out"}, "not in the graph"),
    ([{"name": "rgb", "data": "rgb", "dtype": "uint8"}], {"name": "out"}, "tensor\\(float\\)"),
    ([{"name": "rgb", "data": "depth"}], {"name": "out"}, "needs an input with data: rgb"),
])
def test_spec_graph_contradictions_are_refused(tmp_path, inputs, output, match):
    onnx_path = G.channel_mean_nchw(tmp_path / "g.onnx")
    spec = G.write_spec(tmp_path / "g.yaml", onnx_path, inputs, output)
    if match is None:
        DepthModel(spec)
        return
    with pytest.raises(ModelError, match=match):
        DepthModel(spec)


def test_fixed_graph_vs_dynamic_spec_and_unfed_input(tmp_path):
    fixed = G.first_channel_nhwc(tmp_path / "f.onnx", shape=(1, 8, 8, 3))
    spec = G.write_spec(tmp_path / "f.yaml", fixed,
                        [{"name": "image", "data": "rgb", "layout": "NHWC", "size": "dynamic"}],
                        {"name": "out"})
    with pytest.raises(ModelError, match="fixes 8x8; use size: \\[8, 8\\]"):
        DepthModel(spec)
    spec = G.write_spec(tmp_path / "f2.yaml", fixed,
                        [{"name": "image", "data": "rgb", "layout": "NHWC", "size": [8, 16]}],
                        {"name": "out"})
    with pytest.raises(ModelError, match="fixed 8x16"):
        DepthModel(spec)
    two = G.two_outputs(tmp_path / "two.onnx")
    spec = G.write_spec(tmp_path / "t.yaml", two, [{"name": "rgb", "data": "rgb"}], {"index": 0})
    with pytest.raises(ModelError, match="\\['depth'\\] are not in the spec"):
        DepthModel(spec)


def test_spec_file_problems(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("model: x.onnx\ninputs: [{name: a, data: rgb}]\noutput: {name: o, kind: depthish}\n")
    with pytest.raises(SpecError, match="output.kind 'depthish'"):
        load_spec(bad)
    with pytest.raises(SpecError, match="ONNX file"):
        load_spec(tmp_path / "model.onnx")


def test_graph_optimization_level_comes_from_the_spec(tmp_path):
    """`graph_optimization` sets onnxruntime's level for that model (the shipped specs use
    extended); default all, onnxruntime's own; a value it does not have is refused."""
    import onnxruntime as ort

    onnx_path = G.channel_mean_nchw(tmp_path / "mean.onnx")
    inputs = [{"name": "rgb", "data": "rgb", "layout": "NCHW", "size": "dynamic"}]
    output = {"name": "out", "kind": "metric_depth"}
    levels = ort.GraphOptimizationLevel
    for value, level in ((None, levels.ORT_ENABLE_ALL), ("extended", levels.ORT_ENABLE_EXTENDED),
                         ("Disabled", levels.ORT_DISABLE_ALL)):
        spec = G.write_spec(tmp_path / "mean.yaml", onnx_path, inputs, output)
        if value is not None:
            with open(spec, "a") as f:
                f.write(f"graph_optimization: {value}\n")
        model = DepthModel(spec)
        assert model.session.get_session_options().graph_optimization_level == level
    spec = G.write_spec(tmp_path / "mean.yaml", onnx_path, inputs, output)
    with open(spec, "a") as f:
        f.write("graph_optimization: fastest\n")
    with pytest.raises(SpecError, match="graph_optimization 'fastest' is not valid; use one of all, extended"):
        load_spec(spec)
    with pytest.raises(ModelError, match="graph_optimization"):
        DepthModel(spec)
    from depth_ai_nodes.resources import model_path

    assert load_spec(model_path("depth_fill_classical.yaml")).graph_optimization == "extended"


def test_shipped_spec_matches_shipped_model():
    from depth_ai_nodes.resources import model_path

    model = DepthModel(model_path("depth_completion.yaml"))
    assert model.kind == "metric_depth" and model.spec.needs_depth
    # the completion model keeps valid input depth close and fills holes
    rng = np.random.default_rng(0)
    d = np.full((96, 128), 2.0, np.float32)
    d[:, 64:] = 3.0
    holes = rng.random(d.shape) < 0.2
    out = model.predict(rgb_image(96, 128), np.where(holes, 0.0, d)).value
    assert np.isfinite(out).all()
    assert np.median(np.abs(out - d)[~holes]) < 0.05
    assert np.median(np.abs(out - d)[holes]) < 0.15


@pytest.mark.parametrize("name,size", [("depth_anything_v2_small", 518), ("midas_v21_small", 256)])
def test_shipped_specs_for_public_models_parse_and_validate(tmp_path, name, size):
    """The documented specs validate against a stand-in graph with the exported models'
    interface (same names, shapes, dtypes), so a user's real export loads the same way."""
    import onnx
    from onnx import TensorProto, helper

    from depth_ai_nodes.core.model_spec import parse_spec
    from depth_ai_nodes.resources import model_path

    spec_path = model_path(f"specs/{name}.yaml")
    spec = load_spec(spec_path)
    assert spec.output.kind == "relative_inverse_depth" and spec.size.network_size(480, 640) == (size, size)
    inp, out = spec.inputs[0].name, spec.output.name
    g = helper.make_graph(
        [helper.make_node("ReduceMean", [inp], ["m"], axes=[1], keepdims=0),
         helper.make_node("Add", ["m", "k"], [out])], name,
        [helper.make_tensor_value_info(inp, TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, size, size])],
        [G.const("k", 5.0)])
    onnx_path = G.save(g, tmp_path / "standin.onnx")
    import yaml as _yaml
    doc = _yaml.safe_load(spec_path.read_text())
    doc["model"] = str(onnx_path)
    model = DepthModel(parse_spec(doc, tmp_path))
    out_img = model.predict(rgb_image(48, 64)).value
    assert out_img.shape == (48, 64) and np.isfinite(out_img).all()


def test_rgb_only_relative_model_aligned_to_sparse_depth(tmp_path):
    """A monocular-style model (rgb in, relative depth out) made metric from sparse LiDAR-like
    references only: 3 % of the pixels, with 10 % of them gross outliers."""
    onnx_path = G.channel_mean_nchw(tmp_path / "mono.onnx")
    spec = G.write_spec(tmp_path / "mono.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb", "scale": 1.0}], {"name": "out", "kind": "relative_depth"})
    pipe = DepthPipeline(DepthModel(spec), PipelineConfig(min_depth_m=0.05, max_depth_m=50))
    rgb = rgb_image(60, 80, 5)
    truth = (0.02 * rgb.astype(np.float32).mean(axis=2) + 0.5).astype(np.float32)  # metric = 0.02 * out + 0.5
    rng = np.random.default_rng(6)
    sparse = np.where(rng.random(truth.shape) < 0.03, truth, 0.0).astype(np.float32)
    idx = np.flatnonzero(sparse)
    bad = idx[: len(idx) // 10]
    sparse.flat[bad] = rng.uniform(0.5, 6.0, bad.size)
    res = pipe.process(rgb, None, sparse)
    assert res.aligned and res.alignment.ok and res.alignment.references == len(idx)
    assert res.alignment.scale == pytest.approx(0.02, rel=0.01)
    assert res.alignment.shift == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(res.depth, truth, rtol=0.01)
    # confidence is higher near references than far from them, and never above 1
    assert 0.0 < res.confidence.min() and res.confidence.max() <= 1.0


def test_output_larger_says_which_way_a_relative_output_grows(tmp_path):
    from depth_ai_nodes.core.model_spec import SpecError, parse_spec

    def spec(out: dict):
        return parse_spec({"model": "m.onnx", "inputs": [{"name": "rgb", "data": "rgb"}],
                           "output": {"name": "o", **out}}, base_dir=tmp_path)

    assert spec({"kind": "relative", "larger": "nearer"}).output.kind == "relative_inverse_depth"
    assert spec({"kind": "relative", "larger": "farther"}).output.kind == "relative_depth"
    assert spec({"kind": "relative_inverse_depth"}).output.direction == "nearer"
    with pytest.raises(SpecError, match="contradicts output.kind relative_depth"):
        spec({"kind": "relative_depth", "larger": "nearer"})
    with pytest.raises(SpecError, match="needs output.larger"):
        spec({"kind": "relative"})
    with pytest.raises(SpecError, match="applies to relative outputs"):
        spec({"kind": "metric_depth", "larger": "farther"})
