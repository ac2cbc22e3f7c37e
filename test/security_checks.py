"""What a DDS Security permissions document allows, read back from the XML the keystore wrote.

Rules are matched as the DDS Security specification says (fnmatch patterns, the grant's rules in document
order, the first rule naming the topic decides, then the grant's default), for the checks in the tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fnmatch import fnmatchcase
from pathlib import Path


def grant(path: Path) -> ET.Element:
    return ET.parse(path).getroot().find("permissions/grant")


def allowed(permissions: Path, action: str, topic: str, domain: int) -> bool:
    """May the grant in `permissions` `action` ("publish" or "subscribe") DDS topic `topic` on `domain`?"""
    g = grant(permissions)
    for rule in g:
        if rule.tag not in ("allow_rule", "deny_rule"):
            continue
        if str(domain) not in [i.text for i in rule.findall("domains/id")]:
            continue
        patterns = [t.text for t in rule.findall(f"{action}/topics/topic")]
        if any(fnmatchcase(topic, p) for p in patterns):
            return rule.tag == "allow_rule"
    return g.find("default").text == "ALLOW"
