"""lidar_fusion_node: LiDAR + IR (+ color, inference depth) -> /fused/points and /lidar_depth.

    ros2 launch depth_ai_nodes fusion.launch.py

Inputs default to the pipeline's topics (/lidar/points, /camera/infra1/...);
the LiDAR -> camera calibration comes by topic. Parameters: config/lidar_fusion.yaml.
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
    "fusion_namespace": ("", "namespace of the fusion node (default: /fused/points, /lidar_depth)"),
    "enable_fusion": ("true", "start lidar_fusion_node"),
    "use_sim_time": ("false", "use /clock (e.g. from depth-ai play --clock)"),
    "respawn": ("true", "restart the node if it dies (after 2 s)"),
    "multi_host": ("false", "the pipeline spans machines (as depth-ai run --multi-host): multi-host DDS "
                            "profile, discovery on the local network, reliable QoS"),
    "compressed": ("false", "images cross as JPEG, depth as RVL compressedDepth, LiDAR scans as zstd "
                   "(as depth-ai run --compressed)"),
}


def generate_launch_description() -> LaunchDescription:
    params_file = PathJoinSubstitution([FindPackageShare("depth_ai_nodes"), "config",
                                        "lidar_fusion.yaml"])
    fusion = Node(
        package="depth_ai_nodes", executable="lidar_fusion_node",
        namespace=LaunchConfiguration("fusion_namespace"),
        parameters=[params_file, {
            "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
        }, switched_parameters("fusion", multi_host=LaunchConfiguration("multi_host"),
                                compressed=LaunchConfiguration("compressed"))],
        respawn=LaunchConfiguration("respawn"),
        respawn_delay=2.0,  # launch takes a number here, not a substitution
        output="screen", emulate_tty=True,
        condition=IfCondition(LaunchConfiguration("enable_fusion")))
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        *dds_environment_actions(LaunchConfiguration("multi_host")),
        fusion,
    ])
