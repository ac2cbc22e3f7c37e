"""Write the public Python API of an rclpy source tree as JSON: the allowed-API list the Humble check reads.

    git clone -b 3.3.15 https://github.com/ros2/rclpy /tmp/rclpy     # Humble's newest release
    python scripts/rclpy_api.py /tmp/rclpy/rclpy/rclpy > test/rclpy_humble_api.json

For each module (`rclpy.node`, ...): the names defined or imported at its top level, and the parameters
of its functions (`rclpy.spin`). For each method name of any class: the parameter lists of its
definitions (a `**` parameter accepts any keyword).
Read from the source with `ast`, nothing imported, so any release's tree works without building it.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def _module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.If | ast.Try):  # names defined under `if TYPE_CHECKING:` or `try:`
            names |= _module_names(ast.Module(body=node.body, type_ignores=[]))
    return names


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return params + (["**"] if a.kwarg else [])


def api(root: Path) -> dict:
    """{"modules": {module: [names]}, "functions": {module.function: [parameters]},
    "methods": {method: [[parameters], ...]}} of the tree at `root`."""
    modules: dict[str, list[str]] = {}
    functions: dict[str, list[str]] = {}
    methods: dict[str, set[tuple[str, ...]]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text())
        modules[module] = sorted(_module_names(tree))
        for fn in tree.body:
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[f"{module}.{fn.name}"] = _parameters(fn)
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.setdefault(fn.name, set()).add(tuple(_parameters(fn)))
    return {
        "modules": modules,
        "functions": functions,
        "methods": {m: sorted(map(list, p)) for m, p in sorted(methods.items())},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "node.py").is_file():
        sys.exit("usage: python scripts/rclpy_api.py RCLPY_SOURCE/rclpy/rclpy  (the package folder, with node.py)")
    json.dump(api(Path(sys.argv[1])), sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")
