"""The openpi policy-server protocol, both ends, with no ROS import: `client` (what vla_node's openpi
backend talks through) and `server` (`ros2-vla serve`: any in-process backend behind the protocol)."""
