"""depth_inference_node: any ONNX depth model on colour (+ depth / sparse depth), metric output.

Thin shell: parameters, message <-> numpy, QoS, diagnostics and a latest-frame
worker; everything else is depth_ai_nodes.core.depth_pipeline (shared with
`depth-ai infer`). Only the newest colour frame is ever processed: a frame that is
replaced before the worker takes it is dropped and counted.

Topics (under the node's namespace, default /depth_inference):
  depth (32FC1 m, NaN invalid), camera_info (= the colour camera_info, the output
  is in the colour geometry), confidence (32FC1 0..1), points (optional
  PointCloud2 x, y, z), stats (depth_ai_nodes/InferenceStats), /diagnostics.
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_ai_nodes.core.depth_model import DepthModel, FrameError, ModelError
from depth_ai_nodes.core.depth_pipeline import ALIGN_MODES, REFERENCES, DepthPipeline, PipelineConfig
from depth_ai_nodes.core.edge_snap import DEFAULT_WINDOW, check_window
from depth_ai_nodes.core.metric_alignment import AlignmentConfig
from depth_ai_nodes.msg import InferenceStats
from depth_ai_nodes.resources import model_spec
from depth_ai_nodes.ros import conversions as conv
from depth_ai_nodes.ros import inputs
from depth_ai_nodes.ros.inputs import InputGate
from depth_ai_nodes.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from depth_ai_nodes.ros.node_main import ConfigError, run_node
from depth_ai_nodes.ros.params import Param, declare
from depth_ai_nodes.ros.qos import QOS_NAMES, history_depth, input_qos_depth_help, qos_from_name


PARAMETERS: list[Param] = [
    Param("model", "", "Model spec YAML (see docs/inference.md): a path, or the name of a spec "
          "shipped in models/ or models/specs/ (e.g. depth_completion, the learned completion "
          "model); empty: the shipped default, models/depth_fill_classical.yaml (that model's "
          "classical fill alone: as good on held-out data at under half the cost)."),
    Param("providers", ["CPUExecutionProvider"], "onnxruntime execution providers in order of "
          "preference (cpu, cuda, tensorrt, openvino or full names); one the installed "
          "onnxruntime lacks is a start-up error."),
    Param("intra_op_threads", 0, "onnxruntime intra-op threads (0: onnxruntime's default)."),
    Param("inter_op_threads", 0, "onnxruntime inter-op threads (0: onnxruntime's default)."),
    Param("color_topic", "/camera/color/image_raw", "Colour image (rgb8, bgr8, rgba8, bgra8)."),
    Param("color_info_topic", "/camera/color/camera_info", "CameraInfo of the colour image; "
          "republished with the output (same geometry)."),
    Param("depth_topic", "/camera/aligned_depth_to_color/image_raw", "Sensor depth registered "
          "to colour (16UC1 mm or 32FC1 m); empty: none."),
    Param("sparse_topic", "", "Sparse metric depth in the colour geometry, e.g. LiDAR projected "
          "into the camera by lidar_fusion_node (16UC1 mm or 32FC1 m); empty: none."),
    Param("sync_tolerance", 0.02, "Largest stamp difference between colour and its depth / sparse "
          "depth.", unit="s"),
    Param("depth_wait", 0.3, "How long a colour frame waits for its depth before it is processed "
          "without it (models that need depth skip it instead).", unit="s"),
    Param("align", "auto", "Metric alignment: auto (relative outputs only), on (also refit metric "
          "outputs), off.", choices=ALIGN_MODES),
    Param("alignment.reference", "auto", "Reference for the fit: auto (sparse if present, else "
          "sensor depth), depth, sparse.", choices=REFERENCES),
    Param("alignment.min_references", 30, "Fewer valid reference pixels than this: no new fit "
          "(the last one is reused with decaying confidence)."),
    Param("alignment.inlier_threshold", 0.05, "Relative depth error counted as inlier.", unit="1"),
    Param("alignment.smoothing", 0.3, "Weight of each new fit in the temporal filter (1: none).",
          unit="1"),
    Param("edge_snap", DEFAULT_WINDOW, "Completion models fed depth_topic: a filled pixel left "
          "between the two sides of a depth edge (both measured within this window) takes the depth "
          "of the side measured closest to it, so no pixel floats in mid-air (docs/inference.md). "
          "Window side, odd; 0: off.", unit="px"),
    Param("min_depth", 0.1, "Output below this is invalid (NaN).", unit="m"),
    Param("max_depth", 20.0, "Output above this is invalid (NaN).", unit="m"),
    Param("publish_points", False, "Also publish points (PointCloud2 x, y, z in the colour "
          "optical frame)."),
    Param("points_stride", 2, "Use every n-th pixel in both directions for points."),
    Param("qos", "sensor_data", "QoS of the published images, camera_info and points.",
          choices=QOS_NAMES),
    Param("input_qos", "best_effort", "QoS of the subscriptions (best_effort matches both "
          "reliable and best-effort publishers).", choices=QOS_NAMES),
    Param("input_qos_depth", 0, input_qos_depth_help("that of input_qos (sensor_data 5, the others 10)")),
    Param("expected_rate", 0.0, "Expected output rate for diagnostics (0: do not check).",
          unit="Hz"),
    Param("color_transport", "raw", "How the colour image arrives: raw, or image_transport's "
          "compressed (<color_topic>/compressed, JPEG or PNG).", choices=("raw", "compressed")),
    Param("depth_transport", "raw", "How depth_topic arrives: raw, or compressedDepth "
          "(<depth_topic>/compressedDepth, PNG or RVL).", choices=("raw", "compressedDepth")),
    *inputs.STAMP_PARAMETERS,
]


class DepthInferenceNode(Node):
    """Subscribes colour (+ depth, + sparse), runs the pipeline on the newest frame, publishes."""

    def __init__(self) -> None:
        super().__init__("depth_inference", namespace="depth_inference")
        self.p = declare(self, PARAMETERS)
        p = self.p
        spec = model_spec(p["model"])
        try:
            check_window(p["edge_snap"])
        except ValueError as err:
            raise ConfigError(f"parameter edge_snap={p['edge_snap']!r} is not valid: {err}") from err
        try:
            self.model = DepthModel(spec, providers=list(p["providers"]),
                                    intra_op_threads=int(p["intra_op_threads"]),
                                    inter_op_threads=int(p["inter_op_threads"]))
            cfg = PipelineConfig(
                align=p["align"], reference=p["alignment.reference"],
                alignment=AlignmentConfig(min_references=int(p["alignment.min_references"]),
                                          inlier_threshold=float(p["alignment.inlier_threshold"]),
                                          smoothing=float(p["alignment.smoothing"])),
                min_depth_m=float(p["min_depth"]), max_depth_m=float(p["max_depth"]),
                edge_snap_px=int(p["edge_snap"]))
            self.pipeline = DepthPipeline(self.model, cfg)
        except ModelError as err:
            raise ConfigError(str(err)) from err
        if self.model.spec.needs_depth and not (p["depth_topic"] or p["sparse_topic"]):
            raise ConfigError(f"model {self.model.spec.name} takes depth as input: set depth_topic "
                              f"or sparse_topic")
        if int(p["points_stride"]) < 1:
            raise ConfigError("points_stride must be >= 1")
        out_qos = qos_from_name(p["qos"])
        try:
            in_qos = qos_from_name(p["input_qos"], history_depth(p["input_qos_depth"], "input_qos_depth") or None)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.depth_pub = self.create_publisher(Image, "depth", out_qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", out_qos)
        self.conf_pub = self.create_publisher(Image, "confidence", out_qos)
        self.points_pub = (self.create_publisher(PointCloud2, "points", out_qos)
                           if p["publish_points"] else None)
        self.stats_pub = self.create_publisher(InferenceStats, "stats", 10)
        self.diag = Diagnostics(self, hardware_id=f"onnxruntime:{self.model.providers[0]}")
        self.gate = InputGate(self, self.diag, inputs.stamp_policy(p))
        self.diag.set("inference", OK, "waiting for frames", model=self.model.spec.name,
                      providers=",".join(self.model.providers), output_kind=self.model.kind)

        self._cv = threading.Condition()
        self._color: tuple[float, Image] | None = None   # (receive time, msg), newest only
        self._info: CameraInfo | None = None
        self._depths: deque[Image] = deque(maxlen=8)
        self._sparse: deque[Image] = deque(maxlen=8)
        self.dropped = 0
        self.errors = 0
        self._stop = False
        # compressed frames are stored undecoded: only the frames the worker takes are decoded
        # (at 30 fps into a model that runs a few times a second, most are replaced unused)
        subs = [(*inputs.transport_topic(p["color_topic"], p["color_transport"]), self._on_color),
                (p["color_info_topic"], CameraInfo, self._on_info)]
        if p["depth_topic"]:
            subs.append((*inputs.transport_topic(p["depth_topic"], p["depth_transport"]),
                         lambda m: self._on_ref("depth", self._depths, m)))
        if p["sparse_topic"]:
            subs.append((p["sparse_topic"], Image, lambda m: self._on_ref("sparse", self._sparse, m)))
        for topic, typ, cb in subs:
            self.create_subscription(typ, topic, self.gate.counted(topic, cb), in_qos)
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"model {self.model.spec.name} ({self.model.kind}) on "
                               f"{','.join(self.model.providers)}; colour {p['color_topic']}, depth "
                               f"{p['depth_topic'] or '-'}, sparse {p['sparse_topic'] or '-'}")

    # -- callbacks: validate at the boundary (cheap: views, no pixel copies) and store; the
    # worker converts. Every malformed raw frame is counted as it arrives, even one a newer
    # frame would have replaced before the worker took it; a compressed frame is decoded (and
    # a corrupt one rejected) only when the worker takes it.
    def _on_color(self, msg: Image | CompressedImage) -> None:
        if self.gate.check_image("color", msg, inputs.COLOR_ENCODINGS)[0] is None:
            return
        with self._cv:
            if self._color is not None:
                self.dropped += 1
            self._color = (time.monotonic(), msg)
            self._cv.notify()

    def _on_info(self, msg: CameraInfo) -> None:
        if self.gate.read("camera_info", inputs.camera_info, msg, stamped=False) is not None:
            self._info = msg   # never republished unless valid

    def _on_ref(self, stream: str, store: deque, msg: Image | CompressedImage) -> None:
        ok, reset = self.gate.check_image(stream, msg, inputs.DEPTH_ENCODINGS)
        if ok is None:
            return
        with self._cv:
            if reset:
                store.clear()
            store.append(msg)
            self._cv.notify()

    def _match(self, store: deque, stamp: float) -> Image | None:
        best = min(store, key=lambda m: abs(conv.stamp_to_s(m.header.stamp) - stamp), default=None)
        if best is not None and abs(conv.stamp_to_s(best.header.stamp) - stamp) <= self.p["sync_tolerance"]:
            return best
        return None

    def _take(self) -> tuple[float, float, Image, Image | None, Image | None] | None:
        """Wait for the newest colour frame and its depth/sparse (up to depth_wait)."""
        with self._cv:
            while not self._stop:
                if self._color is not None:
                    received, color = self._color
                    stamp = conv.stamp_to_s(color.header.stamp)
                    depth = self._match(self._depths, stamp) if self.p["depth_topic"] else None
                    sparse = self._match(self._sparse, stamp) if self.p["sparse_topic"] else None
                    waiting = time.monotonic() - received < self.p["depth_wait"]
                    complete = ((depth is not None or not self.p["depth_topic"])
                                and (sparse is not None or not self.p["sparse_topic"]))
                    if complete or not waiting:
                        self._color = None
                        return received, time.monotonic(), color, depth, sparse
                    self._cv.wait(timeout=0.005)
                else:
                    self._cv.wait(timeout=0.1)
        return None

    def _work(self) -> None:
        while True:
            item = self._take()
            if item is None:
                return
            try:
                self._process(*item)
            except FrameError as err:
                self._frame_error(str(err))
            except Exception as err:  # never let one frame kill the worker
                if not self.context.ok():  # SIGINT shut rclpy down mid-frame: just stop
                    return
                self._frame_error(f"unexpected {type(err).__name__}: {err}")

    def _frame_error(self, what: str) -> None:
        self.errors += 1
        self.get_logger().error(f"frame skipped: {what}", throttle_duration_sec=2.0)
        self.diag.set("inference", ERROR, f"frame skipped: {what}", frame_errors=self.errors)

    def _process(self, received: float, taken: float, color: Image | CompressedImage,
                 depth: Image | CompressedImage | None, sparse: Image | None) -> None:
        transports = {"color": self.p["color_transport"], "depth": self.p["depth_transport"], "sparse": "raw"}
        decoded = {name: self.gate.decode_image(name, reader, msg, transports[name])
                   for name, reader, msg in (("color", inputs.color_image, color), ("depth", inputs.depth_image, depth),
                                             ("sparse", inputs.depth_image, sparse)) if msg is not None}
        if any(v is None for v in decoded.values()):
            return  # rejected at the boundary: counted, logged and in /diagnostics
        rgb = decoded["color"].array
        depth_m = decoded["depth"].array if "depth" in decoded else None
        sparse_m = decoded["sparse"].array if "sparse" in decoded else None
        if self.model.spec.needs_depth and depth_m is None and sparse_m is None:
            raise FrameError(f"no depth within {self.p['sync_tolerance']} s of the colour frame "
                             f"(stamp {conv.stamp_to_s(color.header.stamp):.3f}); the model needs depth")
        res = self.pipeline.process(rgb, depth_m, sparse_m)
        info = self._info
        height, width = rgb.shape[:2]
        if info is not None and (info.width, info.height) != (width, height):
            res.warnings.append(f"camera_info {info.width}x{info.height} does not match the colour image "
                                f"{width}x{height}: camera_info and points not published")
            info = None
        elif info is None:
            res.warnings.append(f"no camera_info on {self.p['color_info_topic']} yet: camera_info "
                                f"and points not published")
        header = color.header
        self.depth_pub.publish(conv.array_to_image(res.depth, "32FC1", header=header))
        self.conf_pub.publish(conv.array_to_image(res.confidence, "32FC1", header=header))
        if info is not None:
            out_info = CameraInfo(header=header, height=info.height, width=info.width,
                                  distortion_model=info.distortion_model, d=info.d, k=info.k,
                                  r=info.r, p=info.p, binning_x=info.binning_x,
                                  binning_y=info.binning_y, roi=info.roi)
            self.info_pub.publish(out_info)
            if self.points_pub is not None:
                model = conv.camera_info_to_model(info)
                self.points_pub.publish(conv.depth_to_pointcloud2(
                    np.nan_to_num(res.depth, nan=0.0), model, depth_scale=1.0,
                    stride=int(self.p["points_stride"]), header=header))
        node_s = time.monotonic() - received
        a = res.alignment
        self.stats_pub.publish(InferenceStats(
            header=header, model=self.model.spec.name, model_latency_ms=res.run_s * 1e3,
            node_latency_ms=node_s * 1e3, scale=a.scale, shift=a.shift,
            fit_residual=a.residual if a.residual == a.residual else 0.0,
            reference_points=a.references, confidence=a.confidence, frames_dropped=self.dropped))
        self.diag.rate("inference", "depth", float(self.p["expected_rate"])).tick(node_s)
        values = dict(model_latency_ms=res.run_s * 1e3, node_latency_ms=node_s * 1e3,
                      overhead_ms=(node_s - res.run_s) * 1e3,
                      queue_wait_ms=(taken - received) * 1e3,
                      processing_overhead_ms=(time.monotonic() - taken - res.run_s) * 1e3, scale=a.scale, shift=a.shift,
                      fit_residual=a.residual, reference_points=a.references, confidence=a.confidence,
                      frames_dropped=self.dropped, frame_errors=self.errors,
                      aligned=res.aligned, edge_snapped_px=res.edge_snapped)
        if res.alignment.wrong_sign:  # a spec error only the data can reveal: loud, every 5 s
            self.get_logger().error(f"model spec error: {res.warnings[-1]}", throttle_duration_sec=5.0)
            self.diag.set("inference", ERROR, f"model spec error: {res.warnings[-1]}", **values)
        elif res.warnings:
            self.get_logger().warn("; ".join(res.warnings), throttle_duration_sec=5.0)
            self.diag.set("inference", WARN, "; ".join(res.warnings), **values)
        else:
            self.diag.set("inference", OK, "running", **values)

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return run_node(DepthInferenceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
