# Source this file (bash): `source scripts/env.sh`. It gives a shell where `ros2-vla`, rclpy
# and `from ros2_vla.msg import ActionChunk` work. Run scripts/setup first.
_ros2_vla_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -f "$_ros2_vla_root/.venv/bin/activate" ] || [ ! -f "$_ros2_vla_root/install/setup.bash" ]; then
  echo "ros2_vla: not set up yet: run $_ros2_vla_root/scripts/setup" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck source=/dev/null
source "$_ros2_vla_root/.venv/bin/activate"
if [ -z "${ROS_DISTRO:-}" ]; then
  # The venv is the ROS prefix (PyPI wheels): make ament and CMake find it.
  case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
    export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
  case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
    export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
fi
# colcon's setup scripts read unset variables: allow that while sourcing them.
case $- in *u*) _ros2_vla_u=1; set +u ;; *) _ros2_vla_u= ;; esac
# shellcheck source=/dev/null
source "$_ros2_vla_root/install/setup.bash"
[ -n "$_ros2_vla_u" ] && set -u
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# Camera frames over 512 KiB (640x480 rgb8) overflow Fast DDS's default shared-memory segment and
# go as UDP fragments, most of them lost under load (benchmarks/recorder_bench.py): a 16 MiB segment.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_ros2_vla_root/config/fastdds_large_shm.xml}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset _ros2_vla_root _ros2_vla_u
