"""The whole pipeline: camera + depth inference + LiDAR + fusion, on the built-in scene by default.

    ros2 launch depth_ai_nodes pipeline.launch.py
    ros2 launch depth_ai_nodes pipeline.launch.py source:=realsense lidar_source:=ouster \
        ouster_pcap:=/data/os1.pcap enable_inference:=false
    ros2 launch depth_ai_nodes pipeline.launch.py use_sim_time:=true   # with depth-ai play --clock
    # split across machines (the same ROS_DOMAIN_ID on both), as depth-ai run --only ... --multi-host:
    ros2 launch depth_ai_nodes pipeline.launch.py enable_inference:=false enable_fusion:=false multi_host:=true
    ros2 launch depth_ai_nodes pipeline.launch.py enable_camera:=false enable_lidar:=false multi_host:=true

The same nodes and parameter files as `depth-ai run` (no ROS install needed).
Every argument of the four included launch files can be given here.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    "source": ("synthetic", "camera: synthetic (built-in scene), realsense, file or images"),
    "file_path": ("", "camera: RealSense recording (.bag / .db3) for source:=file"),
    "images_color": ("", "camera: folder or glob of colour images for source:=images"),
    "images_depth": ("", "camera: folder or glob of registered depth images (optional)"),
    "images_camera_info": ("", "camera: camera_info YAML for source:=images"),
    "camera_name": ("camera", "camera node name; topics are /<camera_namespace>/<camera_name>/..."),
    "camera_namespace": ("", "namespace of the camera node"),
    "model": ("", "inference: model spec YAML or a shipped spec's name (empty: the shipped default)"),
    "inference_namespace": ("depth_inference", "namespace of the inference node"),
    "lidar_source": ("synthetic", "LiDAR: synthetic, kitti, ouster or files"),
    "points_path": ("", "LiDAR: folder or glob of .bin / .pcd files for lidar_source:=files"),
    "kitti_path": ("", "LiDAR: KITTI folder for lidar_source:=kitti"),
    "ouster_pcap": ("", "LiDAR: Ouster .pcap for lidar_source:=ouster"),
    "lidar_namespace": ("", "namespace of the LiDAR node (node lidar: /lidar/points)"),
    "fusion_namespace": ("", "namespace of the fusion node"),
    "enable_camera": ("true", "start camera_node"),
    "enable_inference": ("true", "start depth_inference_node"),
    "enable_lidar": ("true", "start lidar_node"),
    "enable_fusion": ("true", "start lidar_fusion_node"),
    "use_sim_time": ("false", "every node uses /clock"),
    "respawn": ("true", "restart nodes that die (after 2 s)"),
    "multi_host": ("false", "the pipeline spans machines (as depth-ai run --multi-host): multi-host DDS "
                            "profile, discovery on the local network, reliable QoS"),
    "compressed": ("false", "images cross as JPEG, depth as RVL compressedDepth, LiDAR scans as zstd "
                   "(as depth-ai run --compressed)"),
}

# included launch file -> the arguments it declares (all passed through)
INCLUDES = {
    "camera.launch.py": ("source", "file_path", "images_color", "images_depth", "images_camera_info",
                         "camera_name", "camera_namespace",
                         "enable_camera", "use_sim_time", "respawn", "multi_host", "compressed"),
    "inference.launch.py": ("model", "inference_namespace", "enable_inference", "use_sim_time",
                            "respawn", "multi_host", "compressed"),
    "lidar.launch.py": ("lidar_source", "kitti_path", "ouster_pcap", "points_path", "lidar_namespace",
                        "enable_lidar", "use_sim_time", "respawn", "multi_host", "compressed"),
    "fusion.launch.py": ("fusion_namespace", "enable_fusion", "use_sim_time", "respawn", "multi_host",
                         "compressed"),
}


def generate_launch_description() -> LaunchDescription:
    launch_dir = PathJoinSubstitution([FindPackageShare("depth_ai_nodes"), "launch"])
    includes = [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([launch_dir, file])),
            launch_arguments={name: LaunchConfiguration(name) for name in names}.items())
        for file, names in INCLUDES.items()
    ]
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        *includes,
    ])
