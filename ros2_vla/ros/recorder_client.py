"""Calls to a running recorder_node: start, stop with a label, discard, and metadata parameters.

recorder = RecorderClient(node)          # node: not spun by anyone else while a call is out
recorder.wait(30.0)
recorder.set_metadata(seed=3, notes="left light off")
path = recorder.start()
summary = recorder.stop(success=True)   # {"episode", "success", "messages", "dropped", "seconds", ...}
"""

from __future__ import annotations

import json
import time

from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool, Trigger

from ros2_vla.errors import RecordingError, Ros2VlaError
from ros2_vla.ros.services import call_service


class RecorderClient:
    """The services of the recorder node `name` (default /recorder), called from the caller's thread."""

    def __init__(self, node: Node, name: str = "/recorder", timeout: float = 15.0) -> None:
        self.node, self.name, self.timeout = node, name, timeout
        self._start = node.create_client(Trigger, f"{name}/start")
        self._stop = node.create_client(SetBool, f"{name}/stop")
        self._discard = node.create_client(Trigger, f"{name}/discard")
        self._params = node.create_client(SetParameters, f"{name}/set_parameters")

    def wait(self, timeout: float) -> None:
        """Until the recorder's services are up; Ros2VlaError naming the node after `timeout` [s]."""
        deadline = time.monotonic() + timeout
        for client in (self._start, self._stop, self._discard, self._params):
            if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
                raise Ros2VlaError(f"recorder {self.name} is not up after {timeout:.0f} s ({client.srv_name} missing)")

    def start(self) -> str:
        """Open a new episode; returns its folder."""
        return self._call(self._start, Trigger.Request()).message

    def stop(self, success: bool) -> dict:
        """Close the episode with the success label; returns the recorder's summary of it."""
        return json.loads(self._call(self._stop, SetBool.Request(data=bool(success))).message)

    def discard(self) -> str:
        return self._call(self._discard, Trigger.Request()).message

    def set_metadata(self, **values: int | str) -> None:
        """Set recorder parameters read when an episode stops: task, notes, seed, demonstrator."""
        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        result = self._call(self._params, request, check=False)
        refused = [f"{p.name}: {r.reason}" for p, r in zip(request.parameters, result.results) if not r.successful]
        if refused:
            raise RecordingError(f"recorder {self.name} refused parameters: {refused}")

    def _call(self, client, request, check: bool = True):
        response = call_service(self.node, client, request, self.timeout, ": is the recorder running?")
        if check and not response.success:
            raise RecordingError(response.message)
        return response
