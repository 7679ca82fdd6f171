"""depth_inference_node: an ONNX depth model on the camera's color (+ depth), metric output.

    ros2 launch depth_ai_nodes inference.launch.py
    ros2 launch depth_ai_nodes inference.launch.py model:=/models/depth_anything_v2_small.yaml

Parameters: config/inference.yaml (the same file `depth-ai run` uses).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from depth_ai_nodes.launch_support import dds_environment_actions, switched_parameters

ARGUMENTS = {
    "model": ("", "model spec YAML, or a shipped spec's name (empty: the shipped default, "
                  "depth_fill_classical; depth_completion: the learned model)"),
    "inference_namespace": ("depth_inference", "namespace of the inference node"),
    "enable_inference": ("true", "start depth_inference_node"),
    "use_sim_time": ("false", "use /clock (e.g. from depth-ai play --clock)"),
    "respawn": ("true", "restart the node if it dies (after 2 s)"),
    "multi_host": ("false", "the pipeline spans machines (as depth-ai run --multi-host): multi-host DDS "
                            "profile, discovery on the local network, reliable QoS"),
    "compressed": ("false", "images cross as JPEG, depth as RVL compressedDepth, LiDAR scans as zstd "
                   "(as depth-ai run --compressed)"),
}


def generate_launch_description() -> LaunchDescription:
    params_file = PathJoinSubstitution([FindPackageShare("depth_ai_nodes"), "config",
                                        "inference.yaml"])
    inference = Node(
        package="depth_ai_nodes", executable="depth_inference_node",
        namespace=LaunchConfiguration("inference_namespace"),
        parameters=[params_file, {
            "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
            "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
        }, switched_parameters("inference", multi_host=LaunchConfiguration("multi_host"),
                                compressed=LaunchConfiguration("compressed"))],
        respawn=LaunchConfiguration("respawn"),
        respawn_delay=2.0,  # launch takes a number here, not a substitution
        output="screen", emulate_tty=True,
        condition=IfCondition(LaunchConfiguration("enable_inference")))
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        *dds_environment_actions(LaunchConfiguration("multi_host")),
        inference,
    ])
