"""depth_ai_nodes: RGB-IR-depth camera driver, ONNX depth inference, LiDAR-IR fusion.

Layout: `core/` is ROS-free numpy (camera models, registration, point clouds,
projection, synchronisation, metric alignment, model adapters, the built-in
scene); `ros/` holds the thin ROS helpers shared by every node (message
conversion, QoS, diagnostics, start-up); `nodes/` the node shells; `tools/`
the `depth-ai` command line (runner, record/play, infer, eval, preview).
"""
__version__ = "0.1.0"
