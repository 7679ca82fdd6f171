"""config/depth_ai.rviz against the pipeline table (depth_ai_nodes/pipeline.py):
every topic a display names is published by the pipeline with the display's
message type, each display's QoS matches its publisher (the node's `qos`
parameter in its config file), optional topics are off by default, and the
fused cloud is coloured by its IR field. The runner test checks the same
topics on a live run."""
from __future__ import annotations

from pathlib import Path

import yaml

from depth_ai_nodes.pipeline import NODES, load_params_file
from depth_ai_nodes.resources import config_path

RVIZ = config_path("depth_ai.rviz")
DISPLAY_TYPES = {"rviz_default_plugins/Image": "sensor_msgs/msg/Image",
                 "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
                 "rviz_default_plugins/Camera": "sensor_msgs/msg/Image"}
RELIABILITY = {"sensor_data": "Best Effort", "best_effort": "Best Effort",
               "reliable": "Reliable", "default": "Reliable"}


def topic_displays(displays: list[dict]) -> list[dict]:
    out = []
    for d in displays:
        if d.get("Class") == "rviz_common/Group":
            out += topic_displays(d.get("Displays", []))
        elif isinstance(d.get("Topic"), dict):
            out.append(d)
    return out


def rviz_displays() -> list[dict]:
    cfg = yaml.safe_load(Path(RVIZ).read_text())
    return topic_displays(cfg["Visualization Manager"]["Displays"])


def publishers() -> dict[str, tuple]:
    """topic -> (node spec, output) for everything the pipeline table publishes."""
    return {o.topic: (n, o) for n in NODES for o in n.outputs}


def node_qos_name(spec) -> str:
    """The node's `qos` parameter: its config file, else its PARAMETERS default."""
    if spec.params_path().is_file():
        values = load_params_file(spec.params_path(), spec.node_name)
        if "qos" in values:
            return values["qos"]
    from depth_ai_nodes.pipeline import node_parameters

    table = node_parameters(spec) if spec.available() else None
    return (table or {}).get("qos", "sensor_data")


def test_rviz_config_names_only_pipeline_topics_with_matching_qos():
    displays = rviz_displays()
    assert displays, "no topic displays in depth_ai.rviz"
    pubs = publishers()
    for d in displays:
        topic = d["Topic"]["Value"]
        assert topic in pubs, f"display {d['Name']!r}: {topic} is not published by the pipeline"
        spec, output = pubs[topic]
        assert DISPLAY_TYPES[d["Class"]] == output.msgtype, (d["Name"], output.msgtype)
        want = RELIABILITY[node_qos_name(spec)]
        assert d["Topic"]["Reliability Policy"] == want, (
            f"display {d['Name']!r} on {topic}: {d['Topic']['Reliability Policy']}, "
            f"but {spec.executable} publishes {want}")
        assert d["Topic"]["Durability Policy"] == "Volatile", d["Name"]
        if output.optional:
            assert d["Enabled"] is False, (
                f"{topic} needs {output.enable_param}:=true; its display must start disabled")


def test_rviz_shows_images_depth_and_both_clouds_with_fused_coloured_by_ir():
    displays = {d["Topic"]["Value"]: d for d in rviz_displays()}
    for topic in ("/camera/color/image_raw", "/camera/infra1/image_rect_raw",
                  "/camera/depth/image_rect_raw", "/camera/depth/color/points",
                  "/fused/points"):
        assert topic in displays, f"depth_ai.rviz has no display of {topic}"
    fused = displays["/fused/points"]
    assert fused["Enabled"] and fused["Color Transformer"] == "Intensity"
    assert fused["Channel Name"] == "ir"
