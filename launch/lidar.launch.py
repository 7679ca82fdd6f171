"""lidar_node: PointCloud2 (x, y, z, intensity, ring, t) from the built-in scene, KITTI or Ouster.

    ros2 launch depth_ai_nodes lidar.launch.py
    ros2 launch depth_ai_nodes lidar.launch.py lidar_source:=kitti kitti_path:=/data/kitti
    ros2 launch depth_ai_nodes lidar.launch.py lidar_source:=ouster ouster_pcap:=/data/os1.pcap

Parameters: config/lidar.yaml (the same file `depth-ai run` uses).
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
    "lidar_source": ("synthetic", "synthetic (built-in scene), kitti, ouster or files"),
    "points_path": ("", "folder or glob of .bin / .pcd point files for lidar_source:=files"),
    "kitti_path": ("", "KITTI folder with velodyne/*.bin for lidar_source:=kitti"),
    "ouster_pcap": ("", "Ouster capture .pcap for lidar_source:=ouster"),
    "lidar_namespace": ("", "namespace of the LiDAR node (node lidar: topics /<namespace>/lidar/points)"),
    "enable_lidar": ("true", "start lidar_node"),
    "use_sim_time": ("false", "use /clock (e.g. from depth-ai play --clock)"),
    "respawn": ("true", "restart the node if it dies (after 2 s)"),
    "multi_host": ("false", "the pipeline spans machines (as depth-ai run --multi-host): multi-host DDS "
                            "profile, discovery on the local network, reliable QoS"),
    "compressed": ("false", "images cross as JPEG, depth as RVL compressedDepth, LiDAR scans as zstd "
                   "(as depth-ai run --compressed)"),
}


def generate_launch_description() -> LaunchDescription:
    params_file = PathJoinSubstitution([FindPackageShare("depth_ai_nodes"), "config",
                                        "lidar.yaml"])
    lidar = Node(
        package="depth_ai_nodes", executable="lidar_node",
        namespace=LaunchConfiguration("lidar_namespace"),
        parameters=[params_file, {
            "source": ParameterValue(LaunchConfiguration("lidar_source"), value_type=str),
            "kitti_path": ParameterValue(LaunchConfiguration("kitti_path"), value_type=str),
            "ouster_pcap": ParameterValue(LaunchConfiguration("ouster_pcap"), value_type=str),
            "points_path": ParameterValue(LaunchConfiguration("points_path"), value_type=str),
            "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
        }, switched_parameters("lidar", multi_host=LaunchConfiguration("multi_host"),
                                compressed=LaunchConfiguration("compressed"))],
        respawn=LaunchConfiguration("respawn"),
        respawn_delay=2.0,  # launch takes a number here, not a substitution
        output="screen", emulate_tty=True,
        condition=IfCondition(LaunchConfiguration("enable_lidar")))
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        *dds_environment_actions(LaunchConfiguration("multi_host")),
        lidar,
    ])
