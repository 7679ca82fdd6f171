"""LiDAR sources (ROS-free): the built-in scene, KITTI .bin folders, Ouster pcap captures.

Every source yields `LidarScan`s (see base.py); lidar_node turns them into PointCloud2.
"""
from .base import LidarScan, LidarSource, SourceError, open_source

__all__ = ["LidarScan", "LidarSource", "SourceError", "open_source"]
