"""MoveIt's /compute_ik (moveit_msgs/srv/GetPositionIK) as the bridge's IK: the same planner, another solver.

bridge_node uses it with `ik_backend:=moveit` on a ROS 2 distro with MoveIt (move_group running). Each
step sends the seed and target the pinocchio solver would get; the answer becomes the same `IkResult`
(`external_ik_result`), so tolerances and singularity scaling apply unchanged.

The calls come from inside bridge_node's chunk callback; `BlockingClient` waits for each reply on an
executor of its own, so the bridge's executor is never re-entered (no deadlock).
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration

from ros2_vla.errors import RequirementError
from ros2_vla.ik.external import external_ik_result, matrix_to_quaternion
from ros2_vla.ik.params import IkParams, IkResult
from ros2_vla.kinematics.model import ArmModel
from ros2_vla.ros.blocking_client import BlockingClient

try:
    from moveit_msgs.msg import MoveItErrorCodes
    from moveit_msgs.srv import GetPositionIK
except ModuleNotFoundError as exc:  # the PyPI ROS wheels have no MoveIt
    raise RequirementError(
        f"ik_backend 'moveit' needs moveit_msgs ({exc.name} is not installed): source a ROS 2 distro with MoveIt "
        "and run move_group, or use ik_backend:=pinocchio"
    ) from exc

_REPLY_MARGIN = 0.2  # [s] waited beyond MoveIt's own IK timeout for the reply to arrive


class MoveItIk:
    """A callable with `solve_ik`'s signature that asks MoveIt.

    group: the MoveIt planning group of the arm (e.g. fr3_arm); timeout [s]: MoveIt's IK time per target;
    service: the GetPositionIK service name; avoid_collisions: let MoveIt reject colliding solutions.
    Frames: the target is sent in the chain's base link, for the chain's TCP link, as MoveIt's URDF
    must name them too.
    """

    def __init__(
        self,
        group: str,
        timeout: float = 0.05,
        service: str = "/compute_ik",
        avoid_collisions: bool = False,
        node_name: str = "bridge_moveit_ik",
    ) -> None:
        self.group = group
        self.timeout = timeout
        self.avoid_collisions = avoid_collisions
        self._client = BlockingClient(GetPositionIK, service, node_name)

    def wait_for_service(self, timeout: float) -> bool:
        return self._client.wait_for_service(timeout)

    def __call__(self, model: ArmModel, T_base_target: np.ndarray, q_seed: np.ndarray, params: IkParams) -> IkResult:
        response = self._client.call(self._request(model, T_base_target, q_seed), self.timeout + _REPLY_MARGIN)
        if response is None:
            self._client.node.get_logger().error(
                f"no answer from {self._client.service}: is move_group running?", throttle_duration_sec=2.0
            )
            return external_ik_result(model, T_base_target, q_seed, False, params)
        solved = response.error_code.val == MoveItErrorCodes.SUCCESS
        index = {n: i for i, n in enumerate(response.solution.joint_state.name)}
        if solved and all(n in index for n in model.joint_names):
            q = np.array([response.solution.joint_state.position[index[n]] for n in model.joint_names])
        else:
            q, solved = np.asarray(q_seed, dtype=np.float64), False
        return external_ik_result(model, T_base_target, q, solved, params)

    def destroy(self) -> None:
        self._client.destroy()

    def _request(self, model: ArmModel, T: np.ndarray, q_seed: np.ndarray) -> GetPositionIK.Request:
        request = GetPositionIK.Request()
        ik = request.ik_request
        ik.group_name = self.group
        ik.robot_state.joint_state.name = list(model.joint_names)
        ik.robot_state.joint_state.position = [float(x) for x in q_seed]
        ik.avoid_collisions = self.avoid_collisions
        ik.ik_link_name = model.chain.ee_link
        ik.pose_stamped.header.frame_id = model.chain.base_link
        p, o = ik.pose_stamped.pose.position, ik.pose_stamped.pose.orientation
        p.x, p.y, p.z = (float(v) for v in T[:3, 3])
        o.x, o.y, o.z, o.w = (float(v) for v in matrix_to_quaternion(T[:3, :3]))
        ik.timeout = Duration(sec=int(self.timeout), nanosec=int((self.timeout % 1.0) * 1e9))
        return request
