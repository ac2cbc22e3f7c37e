"""The package uses no rclpy API newer than Humble's, so Humble users are not broken silently.

The allowed API is Humble's own, in one place: `test/rclpy_humble_api.json`, written from rclpy 3.3.15's
source (Humble's newest release) by `scripts/rclpy_api.py` (its docstring has the command). Every file
of the package that imports rclpy is read with `ast`: each rclpy module and name it imports or
reaches as an attribute must exist in Humble, each call of an rclpy function must fit Humble's
parameters, and each call of a method the installed rclpy defines must name a method Humble has,
with keywords and a number of positional arguments one of Humble's definitions accepts. Method names
the package's own classes also define (`call`, `reset`, ...) are ambiguous without types and are not
checked."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from rclpy_api import api  # noqa: E402

HUMBLE = json.loads((ROOT / "test" / "rclpy_humble_api.json").read_text())
SOURCES = sorted([*(ROOT / "ros2_vla").rglob("*.py"), *(ROOT / "launch").glob("*.py")])


def _uses_rclpy(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "rclpy" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rclpy":
            return True
    return False


def _humble_has(module: str, name: str) -> bool:
    return name in HUMBLE["modules"].get(module, ()) or f"{module}.{name}" in HUMBLE["modules"]


def _accepts(definitions: list[list[str]], call: ast.Call) -> bool:
    """One of Humble's `definitions` (parameter lists) takes this call's keywords and positional count."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return True  # *args / **kwargs: not decidable here
    keywords = {k.arg for k in call.keywords}
    for params in definitions:
        named = [p for p in params if p not in ("self", "cls", "**")]
        if len(call.args) <= len(named) and ("**" in params or keywords <= set(named)):
            return True
    return False


def _own_methods() -> set[str]:
    """Method names the package's own classes define."""
    names = set()
    for path in SOURCES:
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            names |= {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def _call_problem(call: ast.Call, modules: dict[str, str], other_modules: set[str], checked: set[str]) -> str | None:
    """What of this call Humble lacks, if anything."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    receiver = func.value.id if isinstance(func.value, ast.Name) else None
    said = f"{func.attr}() with {len(call.args)} positional, keywords ({', '.join(str(k.arg) for k in call.keywords)})"
    if receiver in modules:  # rclpy.spin(node): a module function
        name = f"{modules[receiver]}.{func.attr}"
        definition = HUMBLE["functions"].get(name)
        return None if definition is None or _accepts([definition], call) else f"{modules[receiver]}.{said}"
    if receiver in other_modules or func.attr.startswith("_") or func.attr not in checked:
        return None  # time.sleep(...), private, or not an rclpy method name
    if func.attr not in HUMBLE["methods"]:
        return f"method {func.attr}() (not in Humble)"
    return None if _accepts(HUMBLE["methods"][func.attr], call) else said


def problems(path: Path, rclpy_methods: set[str]) -> list[str]:
    """What in `path` Humble's rclpy lacks ("file:line: ..."), given the method names to check."""
    tree = ast.parse(path.read_text())
    if not _uses_rclpy(tree):
        return []
    found = []

    def where(node: ast.AST) -> str:
        return f"{path.relative_to(ROOT)}:{node.lineno}"

    modules: dict[str, str] = {}  # local name -> rclpy module it is bound to
    other_modules: set[str] = set()  # local names of other imported modules (time, ...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "rclpy":
                    other_modules.add(alias.asname or alias.name.split(".")[0])
                else:
                    if alias.name not in HUMBLE["modules"]:
                        found.append(f"{where(node)}: module {alias.name}")
                    # `import rclpy.node` binds rclpy; `import rclpy.node as n` binds n to rclpy.node
                    modules[alias.asname or "rclpy"] = alias.name if alias.asname else "rclpy"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rclpy":
            if node.module not in HUMBLE["modules"]:
                found.append(f"{where(node)}: module {node.module}")
                continue
            for alias in node.names:
                if not _humble_has(node.module, alias.name):
                    found.append(f"{where(node)}: {node.module}.{alias.name}")
                elif f"{node.module}.{alias.name}" in HUMBLE["modules"]:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            module = modules[node.value.id]
            if not _humble_has(module, node.attr):
                found.append(f"{where(node)}: {module}.{node.attr}")
        if isinstance(node, ast.Call) and (problem := _call_problem(node, modules, other_modules, rclpy_methods)):
            found.append(f"{where(node)}: {problem}")
    return found


@pytest.fixture(scope="module")
def rclpy_methods() -> set[str]:
    """Method names the installed rclpy's classes define (this distro's), less the package's own: calls
    of these are checked."""
    spec = importlib.util.find_spec("rclpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rclpy not importable: run through scripts/test")
    return set(api(Path(next(iter(spec.submodule_search_locations))))["methods"]) - _own_methods()


def test_the_package_uses_only_humbles_rclpy_api(rclpy_methods):
    checked = [p for p in SOURCES if _uses_rclpy(ast.parse(p.read_text()))]
    assert len(checked) >= 10, "the check found too few rclpy users to be looking at the package"
    found = [line for path in checked for line in problems(path, rclpy_methods)]
    assert not found, "rclpy API that Humble (rclpy 3.3.15) lacks, listed in test/rclpy_humble_api.json:\n" + "\n".join(
        found
    )


def test_the_check_catches_apis_newer_than_humble(tmp_path, rclpy_methods, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    newer = tmp_path / "newer.py"
    newer.write_text(
        "import rclpy\n"
        "from rclpy.node import Node\n"
        "from rclpy.event_handler import SubscriptionEventCallbacks\n"  # Iron's rename of qos_event
        "def make(node: Node):\n"
        "    node.create_timer(0.1, print, autostart=False)\n"  # autostart: Jazzy
        "    rclpy.spin_once(node, timeout_sec=0.1)\n"  # in Humble: fine
        "    rclpy.create_node('n', enable_logger_service=True)\n"  # enable_logger_service: Iron
    )
    found = problems(newer, rclpy_methods)
    assert any("rclpy.event_handler" in f for f in found), found
    assert any("create_timer()" in f and "autostart" in f for f in found), found
    assert any("rclpy.create_node()" in f and "enable_logger_service" in f for f in found), found
    assert len(found) == 3, found


def test_loggers_are_called_with_warning_not_the_deprecated_warn():
    # From Kilted on, `RcutilsLogger.warn` is wrapped by typing_extensions' `deprecated`, a frame rclpy does
    # not skip when it finds the caller: every `.warn(...)` in a process is then one call site, and two with
    # different filters (one throttled, one not) raise ValueError in the second, killing the node's spin.
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn"
    ]
    assert calls == [], f"use .warning(...): {calls}"


def test_the_deprecated_warn_shares_one_call_site_across_lines():
    """What the test above guards against, shown on the installed rclpy (where `warn` is deprecated)."""
    import warnings

    from rclpy.impl.rcutils_logger import RcutilsLogger

    if not hasattr(RcutilsLogger.warn, "__wrapped__"):
        pytest.skip("this rclpy's warn is no wrapper (Humble, Jazzy): each call is its own site")
    logger = RcutilsLogger("ros2_vla_warn_check")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        logger.warn("throttled", throttle_duration_sec=1.0)
        with pytest.raises(ValueError, match="filters cannot be changed"):
            logger.warn("not throttled, another line")
    logger.warning("throttled", throttle_duration_sec=1.0)
    logger.warning("not throttled, another line")
