"""`ros2-vla security init`: the keystore's layout (as sros2 writes it), its certificates and signatures,
governance and permissions in the DDS Security structure, permissions that are the graph's, and the
secured launch (enclaves, environment, refusals). No DDS security runs here: see test_security_enforced.py."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import cli
from security_checks import allowed, grant

from ros2_vla.bringup import ENCLAVE_FILES, LaunchOptions, describe_graph
from ros2_vla.dds_env import security_support
from ros2_vla.errors import ConfigError
from ros2_vla.security.cli import init_keystore

DOMAIN = 7
ENCLAVES = ["bridge", "driver", "operator", "recorder", "sim", "vla"]


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("keys") / "keystore"
    names = init_keystore(root, "franka", "franka_ros2", DOMAIN)
    assert names == [f"/ros2_vla/{n}" for n in ENCLAVES]
    return root


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_layout_is_sros2s(keystore):
    for f in ("public/ca.cert.pem", "private/ca.key.pem", "enclaves/governance.xml", "enclaves/governance.p7s"):
        assert (keystore / f).is_file() and not (keystore / f).is_symlink(), f
    for role in ("identity_ca", "permissions_ca"):
        assert os.readlink(keystore / "public" / f"{role}.cert.pem") == "ca.cert.pem"
        assert os.readlink(keystore / "private" / f"{role}.key.pem") == "ca.key.pem"
    for name in ENCLAVES:
        d = keystore / "enclaves" / "ros2_vla" / name
        assert sorted(p.name for p in d.iterdir()) == sorted([*ENCLAVE_FILES, "permissions.xml"])
        assert os.readlink(d / "governance.p7s") == "../../governance.p7s"
        assert os.readlink(d / "identity_ca.cert.pem") == "../../../public/identity_ca.cert.pem"
        assert (d / "identity_ca.cert.pem").resolve() == (keystore / "public" / "ca.cert.pem").resolve()
        assert (d / "key.pem").stat().st_mode & 0o077 == 0, "private keys are the owner's only"
    with pytest.raises(ConfigError, match="already a keystore"):
        init_keystore(keystore, "franka", "", DOMAIN)


def test_certificates_chain_to_the_ca(keystore):
    ca = _cert(keystore / "public" / "ca.cert.pem")
    assert ca.subject.rfc4514_string() == "CN=sros2CA" == ca.issuer.rfc4514_string()
    ca.verify_directly_issued_by(ca)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in ENCLAVES:
        cert = _cert(keystore / "enclaves" / "ros2_vla" / name / "cert.pem")
        assert cert.subject.rfc4514_string() == f"CN=/ros2_vla/{name}"
        cert.verify_directly_issued_by(ca)  # raises on a wrong signature or issuer
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
        assert cert.not_valid_after_utc - now > datetime.timedelta(days=3600)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_governance_and_permissions_are_signed_by_the_permissions_ca(keystore, tmp_path):
    """As Fast DDS checks them (PKCS7_verify with PKCS7_TEXT against the permissions CA): openssl smime -verify."""
    ca = keystore / "public" / "permissions_ca.cert.pem"
    signed = [keystore / "enclaves" / "governance.p7s"]
    signed += [keystore / "enclaves" / "ros2_vla" / n / "permissions.p7s" for n in ENCLAVES]
    for p7s in signed:
        out = tmp_path / "content.xml"
        args = ["openssl", "smime", "-verify", "-text", "-in", p7s, "-CAfile", ca, "-out", out]
        run = subprocess.run(args, capture_output=True, text=True)
        assert run.returncode == 0, f"{p7s}: {run.stderr}"
        assert out.read_bytes().replace(b"\r\n", b"\n") == p7s.with_suffix(".xml").read_bytes()
    # A changed byte fails the check.
    tampered = tmp_path / "tampered.p7s"
    tampered.write_bytes(signed[1].read_bytes().replace(b"rt/vla/action_chunk", b"rt/vla/action_chunX", 1))
    run = subprocess.run(["openssl", "smime", "-verify", "-text", "-in", tampered, "-CAfile", ca], capture_output=True)
    assert run.returncode != 0


def _children(element: ET.Element) -> list[str]:
    return [c.tag for c in element]


def test_governance_has_the_dds_security_structure(keystore):
    """Element order and values as omg_shared_ca_governance.xsd sequences them."""
    root = ET.parse(keystore / "enclaves" / "governance.xml").getroot()
    assert root.tag == "dds" and _children(root) == ["domain_access_rules"]
    rule = root.find("domain_access_rules/domain_rule")
    assert _children(rule) == [
        "domains",
        "allow_unauthenticated_participants",
        "enable_join_access_control",
        "discovery_protection_kind",
        "liveliness_protection_kind",
        "rtps_protection_kind",
        "topic_access_rules",
    ]
    assert rule.find("domains/id").text == str(DOMAIN)
    assert rule.find("allow_unauthenticated_participants").text == "false"
    assert rule.find("enable_join_access_control").text == "true"
    topic_rule = rule.find("topic_access_rules/topic_rule")
    assert _children(topic_rule) == [
        "topic_expression",
        "enable_discovery_protection",
        "enable_liveliness_protection",
        "enable_read_access_control",
        "enable_write_access_control",
        "metadata_protection_kind",
        "data_protection_kind",
    ]


def test_permissions_have_the_dds_security_structure(keystore):
    """Element order as omg_shared_ca_permissions.xsd sequences it; the grant names the certificate's subject."""
    for name in ENCLAVES:
        d = keystore / "enclaves" / "ros2_vla" / name
        g = grant(d / "permissions.xml")
        tags = _children(g)
        assert tags[:2] == ["subject_name", "validity"] and tags[-1] == "default"
        assert set(tags[2:-1]) <= {"allow_rule", "deny_rule"} and "allow_rule" in tags
        assert g.find("subject_name").text == _cert(d / "cert.pem").subject.rfc4514_string()
        assert g.find("default").text == "DENY"
        for rule in g.findall("allow_rule") + g.findall("deny_rule"):
            assert _children(rule)[0] == "domains" and set(_children(rule)[1:]) <= {"publish", "subscribe"}
            assert rule.find("domains/id").text == str(DOMAIN)


def _may(keystore: Path, name: str, action: str, topic: str) -> bool:
    return allowed(keystore / "enclaves" / "ros2_vla" / name / "permissions.xml", action, topic, DOMAIN)


def test_only_the_graph_may_move_the_arm(keystore):
    # Chunks: vla_node, the sim's expert and the operator's teleop; the bridge only reads them.
    assert {n for n in ENCLAVES if _may(keystore, n, "publish", "rt/vla/action_chunk")} == {"vla", "sim", "operator"}
    assert _may(keystore, "bridge", "subscribe", "rt/vla/action_chunk")
    # Only the bridge sends trajectory goals and gripper goals to the driver; the driver (or the sim) serves them.
    goal = "rq/fr3_arm_controller/follow_joint_trajectory/_action/send_goalRequest"
    assert {n for n in ENCLAVES if _may(keystore, n, "publish", goal)} == {"bridge"}
    assert {n for n in ENCLAVES if _may(keystore, n, "subscribe", goal)} == {"driver", "sim"}
    grasp = "rq/franka_gripper/grasp/_action/send_goalRequest"
    assert {n for n in ENCLAVES if _may(keystore, n, "publish", grasp)} == {"bridge"}
    # Only the operator calls /vla/enable, and only the bridge answers it.
    assert {n for n in ENCLAVES if _may(keystore, n, "publish", "rq/vla/enableRequest")} == {"operator"}
    assert {n for n in ENCLAVES if _may(keystore, n, "publish", "rr/vla/enableReply")} == {"bridge"}
    # The driver serves its own services but not the graph's, and publishes none of the graph's topics.
    assert _may(keystore, "driver", "publish", "rr/controller_manager/list_controllersReply")
    assert not _may(keystore, "driver", "publish", "rr/vla/enableReply")
    assert not _may(keystore, "driver", "publish", "rt/vla/action_chunk")
    # Nobody outside the allowed names: a topic no rule names is denied.
    assert not any(_may(keystore, n, "publish", "rt/fr3_arm_controller/joint_trajectory") for n in ENCLAVES)


def test_a_secured_graph_runs_every_node_in_its_enclave(keystore):
    specs = describe_graph(LaunchOptions("franka", sim=True, policy="flow", driver="franka_ros2", secure=str(keystore)))
    assert [s.enclave for s in specs] == ["/ros2_vla/sim", "/ros2_vla/bridge", "/ros2_vla/vla"]
    for s in specs:
        env = dict(s.env)
        assert env == {
            "ROS_SECURITY_KEYSTORE": str(keystore.resolve()),
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
        }
    assert all(not s.enclave and not s.env for s in describe_graph(LaunchOptions("franka", sim=True)))


def test_a_secured_launch_refuses_a_missing_enclave(keystore, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(keystore, partial, symlinks=True)
    shutil.rmtree(partial / "enclaves" / "ros2_vla" / "bridge")
    with pytest.raises(ConfigError, match=r"enclave /ros2_vla/bridge of bridge is incomplete .*ros2-vla security init"):
        describe_graph(LaunchOptions("franka", sim=True, secure=str(partial)))
    (partial / "enclaves" / "ros2_vla" / "vla" / "permissions.p7s").unlink()
    run = subprocess.run(
        cli("graph", "franka", "--policy", "flow", "--secure", str(partial)), capture_output=True, text=True
    )
    assert run.returncode == 2 and "/ros2_vla/bridge" in run.stderr


@pytest.mark.skipif(not security_support(), reason="this Fast DDS has its security plugins: the launch goes ahead")
def test_a_secured_launch_without_dds_security_says_why_and_starts_nothing(keystore):
    run = subprocess.run(cli("launch", "franka", "--sim", "--secure", str(keystore)), capture_output=True, text=True)
    assert run.returncode == 2
    assert "secure launch refused" in run.stderr and "builtin.PKI-DH" in run.stderr
    assert "started" not in run.stdout + run.stderr
