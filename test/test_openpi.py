"""openpi's policy-server protocol, both ends: `ros2-vla serve`'s server talking to openpi's own client, the
package's bounded client against servers that are down, slow, failing or wrong, and the presets that map a
robot to DROID and ALOHA servers. Real WebSockets on 127.0.0.1, no ROS."""

from __future__ import annotations

import threading
import time
import urllib.request

import numpy as np
import pytest
from helpers import free_port

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError, PolicyError, PolicyUnavailable
from ros2_vla.policies.base import Observation
from ros2_vla.policies.observation import state_names
from ros2_vla.policies.openpi.backend import OpenpiConfig, OpenpiPolicy
from ros2_vla.policies.openpi.preset import load_preset
from ros2_vla.serving.client import OpenpiClient
from ros2_vla.serving.protocol import parse_address
from ros2_vla.serving.server import PolicyServer

FRANKA = load_robot_config("franka")
ALOHA = load_robot_config("aloha")


class Scripted:
    """A server-side `infer` whose reply, delay and failures the test sets."""

    def __init__(self, actions=None, delay: float = 0.0) -> None:
        self.actions = np.zeros((10, 7), np.float32) if actions is None else actions
        self.delay, self.calls, self.seen = delay, 0, []
        self.fail = False

    def __call__(self, obs: dict) -> dict:
        self.calls += 1
        self.seen.append(obs)
        time.sleep(self.delay)
        if self.fail:
            raise ValueError("the model blew up")
        return {"actions": self.actions, "call": self.calls}


@pytest.fixture
def serve():
    servers = []

    def start(infer, metadata=None, **kwargs) -> PolicyServer:
        kwargs.setdefault("log", lambda line: None)
        server = PolicyServer(
            infer, metadata or {"policy": "scripted"}, host="127.0.0.1", port=kwargs.pop("port", 0), **kwargs
        ).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def _franka_obs(instruction="pick up the red cube", stamp=1.0) -> Observation:
    rng = np.random.default_rng(0)
    images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in FRANKA.cameras}
    state = np.r_[FRANKA.arms[0].chain.home, 0.04].astype(np.float32)  # fingers fully open
    return Observation(stamp=stamp, images=images, state=state, instruction=instruction)


# --- the server, seen by openpi's own client -------------------------------------------------------------
def test_openpis_client_gets_metadata_actions_and_timing(serve):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    infer = Scripted(np.arange(20, dtype=np.float32).reshape(10, 2))
    server = serve(infer, {"policy": "scripted", "horizon": 10})
    client = WebsocketClientPolicy("127.0.0.1", server.port)
    assert client.get_server_metadata() == {"policy": "scripted", "horizon": 10}
    first = client.infer({"state": np.ones(3, np.float32), "prompt": "hi"})
    second = client.infer({"state": np.ones(3, np.float32), "prompt": "hi"})
    assert np.array_equal(first["actions"], infer.actions)
    assert set(first["server_timing"]) == {"infer_ms"} and set(second["server_timing"]) == {"infer_ms", "prev_total_ms"}
    assert np.array_equal(infer.seen[0]["state"], np.ones(3)) and infer.seen[0]["prompt"] == "hi"
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as reply:
        assert reply.status == 200


def test_a_failing_inference_is_a_text_frame_then_close_1011(serve):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy
    from websockets.exceptions import ConnectionClosedError

    infer = Scripted()
    infer.fail = True
    client = WebsocketClientPolicy("127.0.0.1", serve(infer).port)
    with pytest.raises(RuntimeError, match="the model blew up"):  # openpi's client raises on a text frame
        client.infer({"prompt": "x"})
    with pytest.raises(ConnectionClosedError) as closed:
        client._ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1011


def test_an_api_key_is_required_when_set(serve):
    server = serve(Scripted(), api_key="s3cret")
    with pytest.raises(PolicyUnavailable, match="cannot connect"):
        OpenpiClient("127.0.0.1", server.port, api_key="wrong").connect()
    assert OpenpiClient("127.0.0.1", server.port, api_key="s3cret").connect() == {"policy": "scripted"}


def test_requests_of_several_clients_are_served_in_arrival_order(serve):
    """Each client waits for its reply before its next request, and the server takes turns in arrival
    order: with 3 clients hammering it, no client is answered twice while another is waiting."""
    order, lock = [], threading.Lock()

    def infer(obs):
        with lock:
            order.append(obs["client"])
        time.sleep(0.02)
        return {"actions": np.zeros((1, 1), np.float32)}

    server = serve(infer)
    clients = [OpenpiClient("127.0.0.1", server.port, timeout=10) for _ in range(3)]
    for c in clients:
        c.connect()
    threads = [
        threading.Thread(target=lambda c=c, i=i: [c.infer({"client": i}) for _ in range(10)])
        for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(order) == [0] * 10 + [1] * 10 + [2] * 10
    middle = order[3:-3]  # while all three are sending, every window of 3 turns serves all three
    assert all(len(set(middle[i : i + 3])) == 3 for i in range(len(middle) - 2)), order


def test_a_client_that_vanishes_without_a_close_frame_leaves_the_server_serving(serve):
    logs = []
    server = serve(Scripted(), log=logs.append)
    gone = OpenpiClient("127.0.0.1", server.port)
    gone.infer({"prompt": "x"})
    gone._conn.socket.close()  # killed: no close frame
    assert OpenpiClient("127.0.0.1", server.port).infer({"prompt": "y"})["call"] == 2
    wait = time.monotonic() + 5
    while not any("gone" in line for line in logs) and time.monotonic() < wait:
        time.sleep(0.05)
    assert any("gone" in line for line in logs) and not any("Traceback" in line for line in logs), logs


# --- the client: bounded, and honest about failures -----------------------------------------------------
def test_a_server_that_is_down_fails_fast_and_backs_off(serve):
    port = free_port()
    clock = [100.0]
    client = OpenpiClient("127.0.0.1", port, backoff=0.5, max_backoff=4.0, clock=lambda: clock[0])
    t0 = time.monotonic()
    with pytest.raises(PolicyUnavailable, match=f"cannot connect to ws://127.0.0.1:{port}.*retrying in 0.5 s"):
        client.infer({"prompt": "x"})
    assert time.monotonic() - t0 < 2.0  # refused at once, not a hang
    with pytest.raises(PolicyUnavailable, match="next try in 0.5 s"):  # inside the back-off: no network
        client.infer({"prompt": "x"})
    clock[0] += 0.6
    with pytest.raises(PolicyUnavailable, match="retrying in 1.0 s"):  # failed again: the wait doubles
        client.infer({"prompt": "x"})
    serve(Scripted(), port=port)
    clock[0] += 1.1
    assert client.infer({"prompt": "x"})["call"] == 1  # up again: reconnected


def test_a_slow_reply_times_out_and_is_never_read_as_the_next_answer(serve):
    infer = Scripted(delay=0.8)
    client = OpenpiClient("127.0.0.1", serve(infer).port, timeout=0.3, backoff=0.0)
    t0 = time.monotonic()
    with pytest.raises(PolicyUnavailable, match="no reply .* within 0.3 s"):
        client.infer({"prompt": "x"})
    assert time.monotonic() - t0 < 0.8
    infer.delay = 0.0
    time.sleep(0.9)  # the late reply to call 1 was sent meanwhile, on the dropped connection
    assert client.infer({"prompt": "x"})["call"] == 2  # a fresh connection answers the fresh request


def test_an_error_frame_and_a_reply_without_actions_are_failures(serve):
    infer = Scripted()
    client = OpenpiClient("127.0.0.1", serve(infer).port, backoff=0.0)
    infer.fail = True
    with pytest.raises(PolicyUnavailable, match="the policy server failed: ValueError: the model blew up"):
        client.infer({"prompt": "x"})
    server = serve(lambda obs: {"action": np.zeros(3)})
    with pytest.raises(PolicyUnavailable, match="has no 'actions'"):
        OpenpiClient("127.0.0.1", server.port).infer({"prompt": "x"})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("localhost:8000", ("localhost", 8000)),
        ("gpu", ("gpu", 8000)),
        ("ws://10.0.0.2:9000/", ("10.0.0.2", 9000)),
        ("[::1]:8001", ("::1", 8001)),
    ],
)
def test_server_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:99999", ":8000"])
def test_bad_server_addresses(text):
    with pytest.raises(ValueError):
        parse_address(text)


# --- presets: the robot to DROID and ALOHA servers and back ---------------------------------------------
def test_droid_preset_maps_a_franka_observation_and_its_actions(serve):
    infer = Scripted(np.c_[np.full((10, 7), 0.1), np.linspace(0, 1, 10)].astype(np.float32))
    server = serve(infer, {"policy": "pi05_droid"})
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{server.port}", preset="droid"), FRANKA)
    out = policy.infer(_franka_obs())
    sent = infer.seen[0]
    assert sent["observation/exterior_image_1_left"].shape == (224, 224, 3)
    assert sent["observation/wrist_image_left"].dtype == np.uint8
    assert np.allclose(sent["observation/joint_position"], FRANKA.arms[0].chain.home)
    assert sent["observation/gripper_position"] == pytest.approx([0.0], abs=1e-6)  # open fingers: DROID's 0
    assert sent["prompt"] == "pick up the red cube"
    spec = policy.spec
    assert spec.action_space == "joint_velocity" and spec.dt == pytest.approx(1 / 15, rel=1e-4)
    assert spec.dimension_names == (*FRANKA.arms[0].chain.joint_names, "fr3_finger_joint1")
    assert spec.horizon == 8 and out.values.shape == (8, 8)  # 8 of the 10 steps are played
    assert np.allclose(out.values[:, 7], 1 - np.linspace(0, 1, 10)[:8])  # DROID 1 = closed -> 0 = closed
    assert out.inference_time is not None and out.inference_time < 1.0


@pytest.mark.parametrize(
    "actions, message",
    [
        (np.zeros((10, 7), np.float32), r"shape \(10, 7\), expected \(H, 8\)"),
        (np.full((10, 8), np.nan, np.float32), "NaN"),
    ],
)
def test_wrong_or_nan_actions_are_a_server_failure(serve, actions, message):
    server = serve(Scripted(actions))
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{server.port}", preset="droid"), FRANKA)
    with pytest.raises(PolicyUnavailable, match=message):
        policy.infer(_franka_obs())


def test_aloha_preset_nests_channels_first_images_and_orders_the_state_per_arm(serve):
    infer = Scripted(np.zeros((50, 14), np.float32))
    server = serve(infer)
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{server.port}", preset="aloha"), ALOHA)
    rng = np.random.default_rng(1)
    images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in ALOHA.cameras}
    names = state_names(ALOHA)
    state = np.array([0.057 if "gripper" in n else 0.1 * i for i, n in enumerate(names)], np.float32)
    out = policy.infer(Observation(0.0, images, state, "pick up the cube"))
    sent = infer.seen[0]
    assert set(sent["images"]) == {"cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"}
    assert sent["images"]["cam_high"].shape == (3, 224, 224)
    assert np.array_equal(sent["images"]["cam_high"], images["cam_high"].transpose(2, 0, 1))
    index = {n: i for i, n in enumerate(names)}
    left = [state[index[j]] for j in ALOHA.arms[0].chain.joint_names]
    right = [state[index[j]] for j in ALOHA.arms[1].chain.joint_names]
    assert np.allclose(sent["state"], [*left, 1.0, *right, 1.0])  # grippers open: 1
    assert policy.spec.action_space == "joint_position" and out.values.shape == (50, 14)
    assert policy.spec.dimension_names[6] == "left_gripper"


def test_libero_preset_sends_the_tcp_pose_and_fingers_and_scales_the_deltas(serve):
    from ros2_vla.actions.rotations import matrix_to_rotvec
    from ros2_vla.kinematics.model import ArmModel

    actions = np.tile([1.0, -0.5, 0.0, 0.2, 0.0, -1.0, -1.0], (10, 1)).astype(np.float32)  # -1: open
    infer = Scripted(actions)
    server = serve(infer)
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{server.port}", preset="libero"), FRANKA)
    out = policy.infer(_franka_obs())
    arm = FRANKA.arms[0]
    T = ArmModel.from_arm(arm).fk(np.array(arm.chain.home))
    sent = infer.seen[0]["observation/state"]
    assert sent.shape == (8,)
    np.testing.assert_allclose(sent[:3], T[:3, 3], atol=1e-6)
    np.testing.assert_allclose(sent[3:6], matrix_to_rotvec(T[:3, :3]), atol=1e-6)
    np.testing.assert_allclose(sent[6:], [0.04, -0.04], atol=1e-7)
    assert set(infer.seen[0]) == {"observation/image", "observation/wrist_image", "observation/state", "prompt"}
    assert policy.spec.action_space == "ee_delta"
    assert policy.spec.dimension_names == ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
    assert out.values.shape == (5, 7)
    np.testing.assert_allclose(out.values[0], [0.05, -0.025, 0.0, 0.1, 0.0, -0.5, 1.0], atol=1e-7)  # 1 = open


def test_presets_are_checked_against_the_robot():
    with pytest.raises(ConfigError, match="written for 'franka', not 'aloha'"):
        load_preset("droid", ALOHA)
    with pytest.raises(ConfigError, match="Did you mean 'droid'"):
        load_preset("driod", FRANKA)


def test_frames_of_another_size_are_resized_with_padding_keeping_the_aspect_ratio():
    preset = load_preset("droid", FRANKA)
    frame = np.full((100, 200, 3), 255, np.uint8)
    sent = preset.observation({"scene": frame, "wrist": frame}, np.zeros(8, np.float32), state_names(FRANKA), "x")
    out = sent["observation/exterior_image_1_left"]
    assert out.shape == (224, 224, 3)
    assert out[56:168].min() == 255 and out[:56].max() == 0 and out[168:].max() == 0  # 112 rows of image, centred


# --- `ros2-vla serve`'s own protocol: an in-process backend behind the server --------------------------
def test_a_ros2_vla_server_for_another_robot_is_refused(serve):
    server = serve(
        Scripted(np.zeros((2, 14), np.float32)),
        {"embodiment": "aloha", "policy": "flow:x", "dimension_names": ["a"] * 14},
    )
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{server.port}"), FRANKA)
    with pytest.raises(PolicyUnavailable, match="serves flow:x for 'aloha'"):
        policy.infer(_franka_obs())


def test_empty_and_overlong_instructions_are_refused_before_the_network():
    policy = OpenpiPolicy(OpenpiConfig(f"127.0.0.1:{free_port()}", preset="droid", max_instruction_chars=10), FRANKA)
    with pytest.raises(PolicyError, match="empty"):
        policy.infer(_franka_obs("  "))
    with pytest.raises(PolicyError, match="11 characters long; the limit is 10"):
        policy.infer(_franka_obs("x" * 11))
    assert policy.client._failures == 0
