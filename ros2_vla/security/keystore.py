"""An SROS2 keystore written with `cryptography`, in the layout `ros2 security create_keystore` /
`create_enclave` (ros2/sros2) write and rcl reads:

    KEYSTORE/public/ca.cert.pem            the CA (identity_ca.cert.pem, permissions_ca.cert.pem link to it)
    KEYSTORE/private/ca.key.pem            its key (identity_ca.key.pem, permissions_ca.key.pem link to it)
    KEYSTORE/enclaves/governance.xml|.p7s  the domain's rules, signed by the permissions CA
    KEYSTORE/enclaves/<enclave>/           cert.pem, key.pem, permissions.xml|.p7s, and links to
                                           identity_ca.cert.pem, permissions_ca.cert.pem, governance.p7s

As sros2: EC P-256 keys, a self-signed CA `CN=sros2CA` (BasicConstraints CA, path length 1, critical),
enclave certificates `CN=<enclave>` signed by it, ten years from a day ago, SHA-256; governance and
permissions signed S/MIME (text, detached, SHA-256), as Fast DDS's `PKCS7_verify(..., PKCS7_TEXT)` needs.
Permissions are this graph's (security.graph_policy), not sros2's allow-everything default.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ros2_vla.errors import ConfigError
from ros2_vla.security.graph_policy import Rules

CA_NAME = "sros2CA"
VALID_DAYS = 3650
GOVERNANCE_XSD = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd"
PERMISSIONS_XSD = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def create_keystore(root: Path, domain_id: int) -> None:
    """The CA and the signed governance of domain `domain_id`; ConfigError if `root` already is a keystore."""
    root = Path(root)
    if (root / "enclaves" / "governance.p7s").exists():
        raise ConfigError(f"{root} is already a keystore (enclaves/governance.p7s exists)")
    for d in ("public", "private", "enclaves"):
        (root / d).mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = _certificate(name, key.public_key(), name, key, ca=True)
    _write_key(root / "private" / "ca.key.pem", key)
    (root / "public" / "ca.cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for role in ("identity_ca", "permissions_ca"):
        _link(root / "public" / f"{role}.cert.pem", "ca.cert.pem")
        _link(root / "private" / f"{role}.key.pem", "ca.key.pem")
    governance = governance_xml(domain_id).encode()
    (root / "enclaves" / "governance.xml").write_bytes(governance)
    (root / "enclaves" / "governance.p7s").write_bytes(sign(root, governance))


def create_enclave(root: Path, name: str, rules: Rules, domain_id: int) -> Path:
    """The enclave `name` (`/ros2_vla/bridge`): its certificate, and its signed permissions from `rules`."""
    root = Path(root)
    if not name.startswith("/") or name.endswith("/") or "//" in name:
        raise ConfigError(f"enclave {name!r}: an absolute path like /ros2_vla/bridge")
    ca_cert, ca_key = load_ca(root)
    directory = root / "enclaves" / name.lstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _certificate(subject, key.public_key(), ca_cert.subject, ca_key, ca=False)
    _write_key(directory / "key.pem", key)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for linked, target in (
        ("identity_ca.cert.pem", root / "public" / "identity_ca.cert.pem"),
        ("permissions_ca.cert.pem", root / "public" / "permissions_ca.cert.pem"),
        ("governance.p7s", root / "enclaves" / "governance.p7s"),
    ):
        _link(directory / linked, os.path.relpath(target, directory))
    permissions = permissions_xml(name, rules, domain_id, cert).encode()
    (directory / "permissions.xml").write_bytes(permissions)
    (directory / "permissions.p7s").write_bytes(sign(root, permissions))
    return directory


def load_ca(root: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The permissions CA's certificate and key (the one CA of a keystore this module made)."""
    try:
        cert = x509.load_pem_x509_certificate((root / "public" / "permissions_ca.cert.pem").read_bytes())
        key = serialization.load_pem_private_key((root / "private" / "permissions_ca.key.pem").read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{root} is not a keystore: {exc} (make one with `ros2-vla security init`)") from exc
    return cert, key


def sign(root: Path, data: bytes) -> bytes:
    """`data` signed by the keystore's permissions CA: S/MIME, text, detached, SHA-256 (as sros2 and Fast DDS)."""
    cert, key = load_ca(root)
    options = [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature]
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.SMIME, options)


def governance_xml(domain_id: int) -> str:
    """sros2's default governance for `domain_id`: no unauthenticated participants, join access control,
    discovery and liveliness encrypted, RTPS signed, every topic access-controlled and encrypted."""
    return f"""<dds xmlns:xsi="{XSI}" xsi:noNamespaceSchemaLocation="{GOVERNANCE_XSD}">
  <domain_access_rules>
    <domain_rule>
      <domains>
        <id>{int(domain_id)}</id>
      </domains>
      <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
      <enable_join_access_control>true</enable_join_access_control>
      <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
      <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
      <rtps_protection_kind>SIGN</rtps_protection_kind>
      <topic_access_rules>
        <topic_rule>
          <topic_expression>*</topic_expression>
          <enable_discovery_protection>true</enable_discovery_protection>
          <enable_liveliness_protection>true</enable_liveliness_protection>
          <enable_read_access_control>true</enable_read_access_control>
          <enable_write_access_control>true</enable_write_access_control>
          <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
          <data_protection_kind>ENCRYPT</data_protection_kind>
        </topic_rule>
      </topic_access_rules>
    </domain_rule>
  </domain_access_rules>
</dds>
"""


def permissions_xml(name: str, rules: Rules, domain_id: int, cert: x509.Certificate) -> str:
    """The DDS permissions of one enclave: its grant (subject `CN=<name>`, the certificate's validity), a
    deny rule for what it must never publish, an allow rule for exactly `rules`, and DENY for the rest."""

    def topics(names: set[str], indent: str) -> str:
        return "\n".join(f"{indent}<topic>{escape(t)}</topic>" for t in sorted(names))

    def rule(kind: str, publish: set[str], subscribe: set[str]) -> str:
        parts = [f"      <{kind}>", "        <domains>", f"          <id>{int(domain_id)}</id>", "        </domains>"]
        for tag, names in (("publish", publish), ("subscribe", subscribe)):
            if names:
                parts += [f"        <{tag}>", "          <topics>", topics(names, " " * 12), "          </topics>"]
                parts.append(f"        </{tag}>")
        return "\n".join([*parts, f"      </{kind}>"])

    when = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731  (naive UTC, as sros2 writes it)
    rules_xml = ([rule("deny_rule", rules.deny_publish, set())] if rules.deny_publish else []) + [
        rule("allow_rule", rules.publish, rules.subscribe)
    ]
    body = "\n".join(rules_xml)
    return f"""<dds xmlns:xsi="{XSI}" xsi:noNamespaceSchemaLocation="{PERMISSIONS_XSD}">
  <permissions>
    <grant name="{escape(name)}">
      <subject_name>CN={escape(name)}</subject_name>
      <validity>
        <not_before>{when(cert.not_valid_before_utc)}</not_before>
        <not_after>{when(cert.not_valid_after_utc)}</not_after>
      </validity>
{body}
      <default>DENY</default>
    </grant>
  </permissions>
</dds>
"""


def _certificate(subject: x509.Name, public_key, issuer: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
    # A day back: sros2's allowance for clocks that are behind (Connext checks not_before strictly).
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=1 if ca else None), critical=ca)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Owner-only: a private key readable by others lets them join as this enclave (sros2 leaves the umask's mode).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _link(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)
