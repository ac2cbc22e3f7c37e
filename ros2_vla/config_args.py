"""Command-line options made from the declarations they set, so each setting is declared once.

- A config dataclass's fields (`TrainConfig`, `EvalConfig`): each field declared with `setting(default,
  help)` carries its meaning; `add_config_arguments` turns the named fields into `--field-name` options with
  the field's type, and the help ends with the field's default. Options left out are None in the
  namespace (`given` drops them), so the dataclass's own default applies: it is written nowhere else.
- A node parameter of the schema (`ros2_vla.parameters`): `add_parameter_arguments` makes `--name` with the
  parameter's type, default and description (`ros2-vla eval --device` means what vla_node's `device` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any

from ros2_vla.parameters import param, shown


def setting(default: Any, help: str, choices: Sequence[str] = (), metavar: tuple[str, ...] | None = None) -> Any:  # noqa: A002
    """A dataclass field with a default and its meaning, for the command line and the reader."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": tuple(choices), "metavar": metavar})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(hint: Any) -> tuple[type, int | None]:
    """(scalar type, nargs) of a field's annotation: X | None -> X; tuple[int, int] -> (int, 2)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return args[0], len(args)
    return hint, None


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, config: type, names: Sequence[str]
) -> None:
    """`--name` for each field `names` of the dataclass `config`; absent options are None."""
    hints = typing.get_type_hints(config)
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name in names:
        f = fields[name]
        kind, nargs = _kind(hints[name])
        help_text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        if f.default not in (None, "", dataclasses.MISSING) and kind is not bool:
            help_text += f" (default {shown(f.default)})"
        choices = f.metadata.get("choices") or None
        if kind is bool:  # a switch away from the default
            flag = _flag(name) if not f.default else "--no-" + name.replace("_", "-")
            parser.add_argument(
                flag, dest=name, action="store_const", const=not f.default, default=None, help=help_text
            )
        elif nargs is not None:
            parser.add_argument(
                _flag(name),
                dest=name,
                type=kind,
                nargs=nargs,
                default=None,
                help=help_text,
                metavar=f.metadata.get("metavar"),
            )
        else:
            parser.add_argument(_flag(name), dest=name, type=kind, default=None, choices=choices, help=help_text)


def given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The fields `names` set on the command line (the others keep the dataclass's defaults)."""
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def add_parameter_arguments(parser: argparse.ArgumentParser, node: str, names: Sequence[str], what: str = "") -> None:
    """`--name` for each of `node`'s parameters `names` (`ros2_vla.parameters`), with its default."""
    for name in names:
        p = param(node, name)
        text = (what + p.description).replace("`", "")
        if p.type is bool:  # every boolean parameter is off by default: a switch
            parser.add_argument(_flag(name), dest=name, action="store_true", help=text)
        else:
            default = f" (default {shown(p.default)})" if p.default != "" else ""
            parser.add_argument(_flag(name), dest=name, type=p.type, default=p.default, help=text + default)
