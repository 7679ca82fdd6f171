"""Camera sources for camera_node, ROS-free: a live RealSense (realsense.py), a
RealSense recording (playback.py) and the built-in scene (synthetic.py), all
delivering `base.Frameset`s through the `base.FrameSource` protocol."""
