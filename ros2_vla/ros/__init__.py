"""ROS 2 glue: message conversion, QoS, parameters, service calls, spinning, MoveIt IK, the CLI tools and demo."""
