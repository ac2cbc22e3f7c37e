"""Who may publish and subscribe what in the graph, as DDS Security permissions need it (no ROS here).

One enclave per node of the graph (`/ros2_vla/<node>`), one for the operator's tools (`ros2-vla instruct`,
`enable`, `status`, `demo`, `record`, `teleop`, `latency`) and one for the robot's driver (the controllers
and joint state publishers of the driver profile), each allowed exactly its own endpoints, from the same
facts the nodes use (bringup.NAMES, config/<robot>.yaml, the driver profile). So only bridge_node may send
to the controllers, only vla_node (and the sim's scripted expert, and teleop) may publish chunks, and only
the operator may call `/vla/enable`.

ROS names become DDS topic names as rmw does it (and sros2's permissions template): a topic `/a/b` is
`rt/a/b`; a service's request and reply `rq/a/bRequest` and `rr/a/bReply`; an action `/a` its three
services under `/a/_action/` plus `rt/a/_action/feedback` and `status`. Every node also has rclpy's own
endpoints: `/rosout`, `/parameter_events` and its parameter (and type description) services under its
name, and `ros_discovery_info` (rmw's graph cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ros2_vla.bringup import NAMES, enclave
from ros2_vla.config import RobotConfig
from ros2_vla.data.episode import episode_topics
from ros2_vla.driver_profile import FRANKA_GRIPPER_ACTIONS, DriverProfile

GRAPH_NODES = ("sim", "bridge", "vla", "recorder")  # their default node names are their enclaves' names
OPERATOR, DRIVER = "operator", "driver"
# The node names the operator's tools run as (ros2_vla/ros/*_cli.py, tools.py, demo.py): their own parameter
# services are theirs to serve.
OPERATOR_NODES = ("ros2_vla_*", "teleop", "latency")
ACTION_SERVICES = ("cancel_goal", "get_result", "send_goal")
# The services rclpy gives every node, under its name (get_type_description from Iron on). Named one by
# one, not `/<node>/*`: vla_node's name is also the graph's namespace (/vla/enable is the bridge's).
NODE_SERVICES = (
    "describe_parameters",
    "get_parameter_types",
    "get_parameters",
    "list_parameters",
    "set_parameters",
    "set_parameters_atomically",
    "get_type_description",
)


@dataclass
class Rules:
    """DDS topic names (fnmatch patterns allowed) one enclave may publish and subscribe."""

    publish: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    deny_publish: set[str] = field(default_factory=set)  # checked before the allowed ones (a deny_rule)

    def pub(self, topic: str) -> Rules:
        self.publish.add("rt" + topic)
        return self

    def sub(self, topic: str) -> Rules:
        self.subscribe.add("rt" + topic)
        return self

    def server(self, service: str) -> Rules:
        self.subscribe.add(f"rq{service}Request")
        self.publish.add(f"rr{service}Reply")
        return self

    def client(self, service: str) -> Rules:
        self.publish.add(f"rq{service}Request")
        self.subscribe.add(f"rr{service}Reply")
        return self

    def action_client(self, action: str) -> Rules:
        for s in ACTION_SERVICES:
            self.client(f"{action}/_action/{s}")
        return self.sub(f"{action}/_action/feedback").sub(f"{action}/_action/status")

    def action_server(self, action: str) -> Rules:
        for s in ACTION_SERVICES:
            self.server(f"{action}/_action/{s}")
        return self.pub(f"{action}/_action/feedback").pub(f"{action}/_action/status")

    def ros_node(self, *nodes: str) -> Rules:
        """What every rclpy node has: /rosout, /parameter_events, the graph cache, and the services
        rclpy gives each of `nodes` (named as those nodes run)."""
        self.pub("/rosout").pub("/parameter_events").sub("/parameter_events")
        self.publish.add("ros_discovery_info")
        self.subscribe.add("ros_discovery_info")
        for node in nodes:
            for service in NODE_SERVICES:
                self.server(f"/{node}/{service}")
        return self


def graph_rules(robot: RobotConfig, profile: DriverProfile) -> dict[str, Rules]:
    """Every enclave of `robot`'s graph with `profile`'s driver, and what it may publish and subscribe."""
    joint_states = [s.topic for s in profile.joint_states]
    cameras = [c.topic for c in robot.cameras]
    rules = {name: Rules().ros_node(name) for name in GRAPH_NODES}
    driver = Rules()  # the real robot's driver, or sim_node playing it
    for arm in robot.arms:
        d = profile.arm(arm.name)
        out = [(d.command.interface, d.command.name)]
        if d.gripper is not None and d.gripper.interface != "in_trajectory":
            out.append((d.gripper.interface, d.gripper.name))
        for interface, name in out:
            if interface in ("follow_joint_trajectory", "gripper_command"):
                rules["bridge"].action_client(name)
                driver.action_server(name)
            elif interface == "franka_gripper":
                move, grasp, _ = FRANKA_GRIPPER_ACTIONS  # the bridge uses these two; the driver serves all
                for action in (move, grasp):
                    rules["bridge"].action_client(f"{name.rstrip('/')}/{action}")
                for action in FRANKA_GRIPPER_ACTIONS:
                    driver.action_server(f"{name.rstrip('/')}/{action}")
            else:
                rules["bridge"].pub(name)
                driver.sub(name)
    for topic in joint_states:
        driver.pub(topic)
        rules["bridge"].sub(topic)
        rules["vla"].sub(topic)
    for cam in robot.cameras:
        driver.pub(cam.topic).pub(cam.info_topic)
    # bridge_node: chunks in, statuses out, the arming switch
    rules["bridge"].sub(NAMES.action_chunk).pub(NAMES.bridge_status).pub(NAMES.predicted_path).server(NAMES.enable)
    # vla_node: cameras (raw and compressed), joint states and instructions in, chunks and status out
    for topic in cameras:
        rules["vla"].sub(topic).sub(f"{topic}/compressed")
    rules["vla"].sub(NAMES.instruction).pub(NAMES.action_chunk).pub(NAMES.policy_status)
    # sim_node: the driver's side, the task and its success, the scripted expert's chunks
    sim = rules["sim"]
    sim.publish |= driver.publish
    sim.subscribe |= driver.subscribe
    sim.pub(NAMES.sim_task).pub(NAMES.sim_success).pub(NAMES.action_chunk).server(NAMES.sim_reset)
    # recorder_node: what an episode records, its status and controls
    rec = rules["recorder"]
    for topic in episode_topics(robot, sim=True):  # what recorder_node subscribes to
        rec.sub(topic)
    rec.pub("/recorder/status")
    for s in ("start", "stop", "discard"):
        rec.server(f"/recorder/{s}")
    # the operator: reads everything, instructs, arms, resets the sim, drives the recorder, teleoperates
    op = Rules().ros_node(*OPERATOR_NODES)
    op.sub("/*").pub(NAMES.instruction).pub(NAMES.action_chunk)
    op.client(NAMES.enable).client(NAMES.sim_reset)
    for s in ("start", "stop", "discard", "set_parameters"):
        op.client(f"/recorder/{s}")
    rules[OPERATOR] = op
    # The driver's nodes have names of their own (controller_manager, franka_gripper, xs_sdk ...): they
    # serve their own services, but never the graph's (the arming switch, the sim's reset, the recorder's)
    # and never publish the graph's topics.
    driver = driver.ros_node("*").server("/*")
    driver.deny_publish |= {"rr/vla/*", "rr/sim/*", "rr/recorder/*", "rt/vla/*", "rt/sim/*", "rt/recorder/*"}
    rules[DRIVER] = driver
    return {enclave(name): r for name, r in rules.items()}
