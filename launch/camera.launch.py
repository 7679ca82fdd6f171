"""camera_node: RGB + IR + depth with realsense-ros topics (/camera/color/image_raw, ...).

    ros2 launch depth_ai_nodes camera.launch.py source:=synthetic
    ros2 launch depth_ai_nodes camera.launch.py source:=file file_path:=/data/rec.bag
    ros2 launch depth_ai_nodes camera.launch.py source:=realsense

Parameters: config/camera.yaml (the same file `depth-ai run` uses).
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
    "source": ("synthetic", "synthetic (built-in scene), realsense (live camera), file or images"),
    "file_path": ("", "RealSense recording (.bag / .db3) for source:=file"),
    "images_color": ("", "source:=images: folder or glob of colour images"),
    "images_depth": ("", "source:=images: folder or glob of registered depth images (optional)"),
    "images_camera_info": ("", "source:=images: camera_info YAML (or set images.* in a params file)"),
    "camera_name": ("camera", "node name; topics are /<namespace>/<camera_name>/..."),
    "camera_namespace": ("", "namespace of the camera node"),
    "enable_camera": ("true", "start camera_node"),
    "use_sim_time": ("false", "use /clock (e.g. from depth-ai play --clock)"),
    "respawn": ("true", "restart the node if it dies (after 2 s)"),
    "multi_host": ("false", "the pipeline spans machines (as depth-ai run --multi-host): multi-host DDS "
                            "profile, discovery on the local network, reliable QoS"),
    "compressed": ("false", "images cross as JPEG, depth as RVL compressedDepth, LiDAR scans as zstd "
                   "(as depth-ai run --compressed)"),
}


def generate_launch_description() -> LaunchDescription:
    params_file = PathJoinSubstitution([FindPackageShare("depth_ai_nodes"), "config",
                                        "camera.yaml"])
    camera = Node(
        package="depth_ai_nodes", executable="camera_node",
        name=LaunchConfiguration("camera_name"), namespace=LaunchConfiguration("camera_namespace"),
        parameters=[params_file, {
            "source": ParameterValue(LaunchConfiguration("source"), value_type=str),
            "file_path": ParameterValue(LaunchConfiguration("file_path"), value_type=str),
            "images.color": ParameterValue(LaunchConfiguration("images_color"), value_type=str),
            "images.depth": ParameterValue(LaunchConfiguration("images_depth"), value_type=str),
            "images.camera_info": ParameterValue(LaunchConfiguration("images_camera_info"), value_type=str),
            "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
        }, switched_parameters("camera", multi_host=LaunchConfiguration("multi_host"),
                                compressed=LaunchConfiguration("compressed"))],
        respawn=LaunchConfiguration("respawn"),
        respawn_delay=2.0,  # launch takes a number here, not a substitution
        output="screen", emulate_tty=True,
        condition=IfCondition(LaunchConfiguration("enable_camera")))
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        *dds_environment_actions(LaunchConfiguration("multi_host")),
        camera,
    ])
