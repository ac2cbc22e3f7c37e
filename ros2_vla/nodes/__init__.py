"""The package's ROS 2 nodes: bridge_node, recorder_node, sim_node and vla_node."""
