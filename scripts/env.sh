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
# Fast DDS 3.x (Kilted on, libfastdds) reads FASTDDS_DEFAULT_PROFILES_FILE; 2.x (Humble, Jazzy,
# libfastrtps) only FASTRTPS_DEFAULT_PROFILES_FILE, which 3.x also reads but warns about from every
# node: set the one the prefix's Fast DDS reads (ros2_vla/dds_env.py says the same for Python).
_ros2_vla_profile="${FASTDDS_DEFAULT_PROFILES_FILE:-${FASTRTPS_DEFAULT_PROFILES_FILE:-$_ros2_vla_root/config/fastdds_large_shm.xml}}"
unset FASTDDS_DEFAULT_PROFILES_FILE FASTRTPS_DEFAULT_PROFILES_FILE
_ros2_vla_var=FASTDDS_DEFAULT_PROFILES_FILE
IFS=: read -ra _ros2_vla_prefixes <<< "${AMENT_PREFIX_PATH:-}"
for _ros2_vla_p in "${_ros2_vla_prefixes[@]}"; do
  [ -e "$_ros2_vla_p/lib/libfastrtps.so" ] && { _ros2_vla_var=FASTRTPS_DEFAULT_PROFILES_FILE; break; }
done
export "$_ros2_vla_var=$_ros2_vla_profile"
# Humble has no ROS_AUTOMATIC_DISCOVERY_RANGE: there, host-only discovery is ROS_LOCALHOST_ONLY=1
# (later distros honour that too, but warn from every node and then ignore the range: Humble only).
if [ "${ROS_DISTRO:-}" = humble ] && [ "${ROS_AUTOMATIC_DISCOVERY_RANGE:-}" = LOCALHOST ]; then
  export ROS_LOCALHOST_ONLY="${ROS_LOCALHOST_ONLY:-1}"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset _ros2_vla_root _ros2_vla_u _ros2_vla_profile _ros2_vla_var _ros2_vla_prefixes _ros2_vla_p
