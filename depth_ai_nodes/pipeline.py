"""The pipeline as data: which nodes, in which namespace, with which parameter file,
and which topics each is expected to publish at which rate.

One table read by the runner (`depth-ai run`), the rviz/launch tests and the
docs, so a node, a namespace or a topic is renamed in one place. The launch
files in launch/ name the same executables, namespaces and parameter files
literally (as ROS users expect to read them); test/test_launch_files.py checks
that they agree with this table.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from depth_ai_nodes.resources import config_path

IMAGE = "sensor_msgs/msg/Image"
INFO = "sensor_msgs/msg/CameraInfo"
CLOUD = "sensor_msgs/msg/PointCloud2"
EXTRINSICS = "depth_ai_nodes/msg/Extrinsics"
INFERENCE_STATS = "depth_ai_nodes/msg/InferenceStats"
ODOMETRY = "nav_msgs/msg/Odometry"


@dataclass(frozen=True)
class Output:
    """A topic a node publishes. `rate_hz` is the nominal rate; `rate_param`
    names the parameter whose value sets it (a 'w,h,fps' profile or a Hz value),
    so a params-file override changes the expectation too. `min_ratio` is the
    share of the nominal rate below which the runner flags the topic LOW."""

    topic: str
    msgtype: str
    rate_hz: float = 0.0
    rate_param: str = ""
    monitor: bool = True
    min_ratio: float = 0.5
    enable_param: str = ""  # published only when this bool parameter is true ('name'),
    #                         a parameter has a value ('name=value'); '&' joins conditions

    @property
    def optional(self) -> bool:
        return bool(self.enable_param)

    def enabled(self, params: dict[str, Any]) -> bool:
        for condition in filter(None, self.enable_param.split("&")):
            name, eq, value = condition.partition("=")
            ok = str(params.get(name, "")) == value if eq else bool(params.get(name, False))
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class NodeSpec:
    key: str                # short name used by the runner's flags and status lines
    executable: str         # console script (and `ros2 run depth_ai_nodes <executable>`)
    module: str             # Python module holding PARAMETERS and main()
    node_name: str          # the node's default name (params-file sections use it)
    namespace: str          # '' = root namespace
    params_file: str        # file in config/
    outputs: tuple[Output, ...] = ()
    inputs: tuple[str, ...] = ()   # topics it subscribes to (documentation, rviz test)
    requires: tuple[str, ...] = ()  # keys of nodes it needs

    def available(self) -> bool:
        """True when the node's module is installed (nodes appear as they are written)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def params_path(self) -> Path:
        return config_path(self.params_file)


CAMERA = NodeSpec(
    key="camera", executable="camera_node", module="depth_ai_nodes.nodes.camera_node",
    node_name="camera", namespace="", params_file="camera.yaml",
    outputs=(
        Output("/camera/color/image_raw", IMAGE, 30.0, "depth_module.depth_profile"),
        Output("/camera/infra1/image_rect_raw", IMAGE, 30.0, "depth_module.depth_profile"),
        Output("/camera/depth/image_rect_raw", IMAGE, 30.0, "depth_module.depth_profile"),
        Output("/camera/aligned_depth_to_color/image_raw", IMAGE, 30.0,
               "depth_module.depth_profile"),
        Output("/camera/ground_truth/depth", IMAGE, 30.0, "depth_module.depth_profile",
               enable_param="source=synthetic&enable_ground_truth"),
        Output("/camera/color/camera_info", INFO, 30.0, "depth_module.depth_profile",
               monitor=False),
        Output("/camera/infra1/camera_info", INFO, 30.0, "depth_module.depth_profile",
               monitor=False),
        Output("/camera/depth/camera_info", INFO, 30.0, "depth_module.depth_profile",
               monitor=False),
        Output("/camera/depth/color/points", CLOUD, 30.0, "depth_module.depth_profile",
               enable_param="pointcloud.enable"),
        Output("/camera/extrinsics/depth_to_color", EXTRINSICS, monitor=False),
        Output("/camera/extrinsics/depth_to_infra1", EXTRINSICS, monitor=False),
    ))

INFERENCE = NodeSpec(
    key="inference", executable="depth_inference_node",
    module="depth_ai_nodes.nodes.depth_inference_node",
    node_name="depth_inference", namespace="depth_inference",
    params_file="inference.yaml",
    inputs=("/camera/color/image_raw", "/camera/color/camera_info",
            "/camera/aligned_depth_to_color/image_raw"),
    outputs=(
        Output("/depth_inference/depth", IMAGE, 5.0, min_ratio=0.2),
        Output("/depth_inference/confidence", IMAGE, 5.0, min_ratio=0.2),
        Output("/depth_inference/camera_info", INFO, 5.0, monitor=False),
        Output("/depth_inference/stats", INFERENCE_STATS, monitor=False),
    ),
    requires=("camera",))

LIDAR = NodeSpec(
    key="lidar", executable="lidar_node", module="depth_ai_nodes.nodes.lidar_node",
    node_name="lidar", namespace="", params_file="lidar.yaml",
    outputs=(
        Output("/lidar/points", CLOUD, 10.0, "rate_hz"),
        Output("/lidar/odom", ODOMETRY, 10.0, "rate_hz", monitor=False),
        Output("/lidar/extrinsics/lidar_to_camera", EXTRINSICS, monitor=False),
    ))

FUSION = NodeSpec(
    key="fusion", executable="lidar_fusion_node", module="depth_ai_nodes.nodes.lidar_fusion_node",
    node_name="lidar_fusion_node", namespace="", params_file="lidar_fusion.yaml",
    inputs=("/lidar/points", "/camera/infra1/image_rect_raw", "/camera/infra1/camera_info",
            "/lidar/extrinsics/lidar_to_camera", "/lidar/odom"),
    outputs=(
        Output("/fused/points", CLOUD, 10.0),
        Output("/lidar_depth", IMAGE, 10.0),
        Output("/lidar_depth/camera_info", INFO, 10.0, monitor=False),
        Output("/lidar_depth_color", IMAGE, 10.0, enable_param="color_topic"),
        Output("/lidar_depth_color/camera_info", INFO, 10.0, monitor=False,
               enable_param="color_topic"),
        Output("/lidar_overlay", IMAGE, 10.0, enable_param="publish_overlay"),
    ),
    requires=("camera", "lidar"))

NODES: tuple[NodeSpec, ...] = (CAMERA, INFERENCE, LIDAR, FUSION)
BY_KEY = {n.key: n for n in NODES}

# --multi-host: reliable QoS on the streams that may cross machines (a lost fragment is resent;
# best effort loses the whole image), every node's outputs and the inference node's inputs; the
# sensors' writers keep more messages, as large ones take longer to repair over a lossy link than
# the default 10 last (a 6.3 MB scan ~0.5-1 s; on one machine no 2.7 MB 1280x720 image at 30 Hz
# arrived with 10, on another all did: bench/bench_dds_sample_size.py): 4 s of LiDAR scans at
# 10 Hz, 1 s of camera frames at 30 Hz.
# The fusion node's readers keep 10 messages instead of 5: with 5, raw 128x2048 scans across a
# link with 5 % loss stopped reaching it (a reliable reader drops a scan still under repair once
# 5 newer ones arrived); with 10 they kept flowing at 0.62-0.81 of the clean rate (0.91-0.97 with
# the server's runner --no-monitor, whose monitor took a quarter of that one core). The node decodes
# only the newest queued scan, so a deeper reader adds no backlog latency (it did before: +0.5 s
# with 10 on an overloaded server). The inference node keeps its default (bench/RESULTS.md).
MULTI_HOST_PARAMS = {"camera": {"qos": "reliable", "qos_depth": 30}, "lidar": {"qos": "reliable", "qos_depth": 40},
                     "inference": {"qos": "reliable", "input_qos": "reliable"},
                     "fusion": {"qos": "reliable", "input_qos": "reliable", "input_qos_depth": 10}}
# --compressed: the camera's images cross as image_transport's compressed (JPEG) and depth as
# compressedDepth (RVL: lossless, ~1.5 ms a frame each way), LiDAR scans as point_cloud_transport's
# zstd (lossless, ~3x smaller); their consumers subscribe to those. Measured to cut the bytes
# 2.5-19x per stream (bench/bench_compression.py) and the network CPU of a split pipeline, and
# needed for 128x2048 scans over a lossy link (bench/bench_multi_host.py).
COMPRESSED_PARAMS = {"camera": {"compressed.enable": True, "compressed.format": "jpeg",
                                "compressed_depth.enable": True, "compressed_depth.format": "rvl"},
                     "lidar": {"compressed_points.enable": True, "compressed_points.format": "zstd"},
                     "inference": {"color_transport": "compressed", "depth_transport": "compressedDepth"},
                     "fusion": {"ir_transport": "compressed", "color_transport": "compressed",
                                "cloud_transport": "zstd"}}
# what the runner's --multi-host / --compressed and the launch arguments multi_host:=true /
# compressed:=true set, per node key (the same tables for both)
SWITCHES: dict[str, dict[str, dict[str, Any]]] = {"multi_host": MULTI_HOST_PARAMS, "compressed": COMPRESSED_PARAMS}


@dataclass
class Choices:
    """What the user picked (runner flags / launch arguments)."""

    source: str = "synthetic"        # synthetic | realsense | file
    file_path: str = ""
    model: str = ""                  # model spec path ('' = the node's default)
    lidar: str = "synthetic"         # synthetic | kitti | ouster | none
    lidar_path: str = ""             # KITTI folder / Ouster pcap for lidar kitti|ouster
    inference: bool = True
    fusion: bool = True
    use_sim_time: bool = False


@dataclass
class Planned:
    """One node of a run: its spec, parameter files and command-line parameters."""

    spec: NodeSpec
    params: dict[str, Any] = field(default_factory=dict)
    extra_params_files: list[Path] = field(default_factory=list)

    def ros_args(self) -> list[str]:
        args = ["--ros-args"]
        if self.spec.params_path().is_file():
            args += ["--params-file", str(self.spec.params_path())]
        for f in self.extra_params_files:
            args += ["--params-file", str(f)]
        for key, value in self.params.items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        if self.spec.namespace:
            args += ["-r", f"__ns:=/{self.spec.namespace.strip('/')}"]
        return args

    def effective_params(self) -> dict[str, Any]:
        """What the node will see: its table's defaults, then the files, then -p."""
        values = dict(node_parameters(self.spec) or {})
        for f in [self.spec.params_path(), *self.extra_params_files]:
            if Path(f).is_file():
                values.update(load_params_file(f, self.spec.node_name))
        values.update(self.params)
        return values


def _ros_value(value: Any) -> str:
    """A -p value: YAML as rcl parses it; strings quoted when YAML would read them
    as something else ('' , 'true', '1.5')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain and value else "'" + value.replace("'", "''") + "'"
    return str(value)


# lidar source -> the lidar_node parameter that takes --lidar-path
LIDAR_PATH_PARAMS = {"kitti": "kitti_path", "ouster": "ouster_pcap", "files": "points_path"}


def plan(choices: Choices) -> list[Planned]:
    """The nodes to start for `choices`, with the parameters the choices set.

    Parameters a node does not declare (yet) are not passed, so the plan works
    while nodes grow; `node_parameter_names` reads the node's PARAMETERS table."""
    wanted = {"camera": True, "lidar": choices.lidar != "none",
              "inference": choices.inference,
              "fusion": choices.fusion and choices.lidar != "none"}
    out: list[Planned] = []
    for spec in NODES:
        if not wanted[spec.key]:
            continue
        params: dict[str, Any] = {}
        if spec.key == "camera":
            params["source"] = choices.source
            if choices.file_path:
                params["file_path"] = choices.file_path
        elif spec.key == "inference" and choices.model:
            params["model"] = choices.model
        elif spec.key == "lidar":
            params["source"] = choices.lidar
            if choices.lidar_path:
                params[LIDAR_PATH_PARAMS.get(choices.lidar, "kitti_path")] = choices.lidar_path
        if choices.use_sim_time:
            params["use_sim_time"] = True
        out.append(Planned(spec, params))
    return out


def node_parameters(spec: NodeSpec) -> dict[str, Any] | None:
    """{name: default} from the node module's PARAMETERS table (None if absent)."""
    if not spec.available():
        return None
    module = importlib.import_module(spec.module)
    table = getattr(module, "PARAMETERS", None)
    if table is None:
        return None
    return {p.name: p.default for p in table}


def load_params_file(path: Path | str, node_name: str = "") -> dict[str, Any]:
    """ros__parameters from a params file for `node_name` ('/**' sections and the
    node's own section, the node's winning), flattened to dotted names. ValueError naming the
    file and what is wrong when it is not YAML or not node sections (as rcl would refuse it)."""
    layout = "node sections: <node name or /**>: {ros__parameters: {name: value}}"
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"params file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"params file {path} holds a {type(data).__name__}; it needs {layout}")
    merged: dict[str, Any] = {}
    for key, section in data.items():
        params = (section or {}).get("ros__parameters") if isinstance(section, dict | None) else section
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"params file {path}: section {key!r} is not {layout}")
        name = str(key).strip("/")
        if name in ("**", "*") or (node_name and name.split("/")[-1] == node_name):
            merged.update(_flatten(params or {}))
    return merged


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def expected_rate(output: Output, params: dict[str, Any]) -> float:
    """The output's expected rate given the node's effective parameters."""
    if output.rate_param and output.rate_param in params:
        value = params[output.rate_param]
        try:
            if isinstance(value, str) and "," in value:
                fps = float(value.split(",")[2])
            else:
                fps = float(value)
            if fps > 0:
                return fps
        except (ValueError, IndexError):
            pass
    return output.rate_hz


def published_topics(include_optional: bool = False) -> dict[str, str]:
    """{topic: type} of everything the full pipeline publishes."""
    return {o.topic: o.msgtype for n in NODES for o in n.outputs
            if include_optional or not o.optional}


def config_yaml(key: str) -> str:
    """The documented params file of node `key` at its PARAMETERS defaults."""
    from depth_ai_nodes.ros.params import as_params_yaml

    spec = BY_KEY[key]
    table = importlib.import_module(spec.module).PARAMETERS
    return as_params_yaml(table, spec.executable, spec.module, spec.params_file)


if __name__ == "__main__":
    # python -m depth_ai_nodes.pipeline config lidar > config/lidar.yaml
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "config" and sys.argv[2] in BY_KEY:
        sys.stdout.write(config_yaml(sys.argv[2]))
    else:
        sys.exit(f"usage: python -m depth_ai_nodes.pipeline config {{{','.join(BY_KEY)}}}")
