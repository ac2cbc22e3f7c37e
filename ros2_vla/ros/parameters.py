"""Declare a node's parameters from the schema (`ros2_vla.parameters`), with descriptors rclpy enforces.

Each parameter gets a `ParameterDescriptor`: its type (a value of another type is refused), description,
bounds as an IntegerRange / FloatingPointRange (`ros2 param set /bridge blend_steps -3` is refused with
the range), its choices in `additional_constraints`, and `read_only` unless the node reads it while
running. Choices are not something rclpy checks: a set-parameters callback refuses a value outside them
(except for the parameters that reload vla_node's policy, whose loader reports on `/vla/status`). A bad
value at start (a params file, a launch argument) is a ConfigError naming the parameter: one line and
exit code 2 from `run_node`, not a traceback.
"""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from ros2_vla.errors import ConfigError
from ros2_vla.parameters import NODE_PARAMETERS, Param, Value

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def descriptor(p: Param) -> ParameterDescriptor:
    """The ROS descriptor of one schema entry."""
    d = ParameterDescriptor(
        name=p.name,
        type=_TYPES[p.type],
        description=p.description,
        additional_constraints=p.constraints(),
        read_only=not p.settable,
        dynamic_typing=False,
    )
    if p.low is not None and p.type is int:
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=0)]
    elif p.low is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)]
    return d


def declare_parameters(node: Node, table: str) -> dict[str, Value]:
    """Declare every parameter of `table` ("bridge", "sim", "vla", "recorder") on `node`; their values at
    start, checked. Refuses, from then on, a value set outside a parameter's choices."""
    params = NODE_PARAMETERS[table]
    values = {}
    for p in params.values():
        try:
            values[p.name] = node.declare_parameter(p.name, p.default, descriptor(p)).value
        except InvalidParameterTypeException as exc:
            # ROS reads `-p rate:=500` as an integer, and a typed parameter takes no other type.
            hint = (
                " (write it with a decimal point, e.g. 500.0: ROS reads 500 as an integer)" if p.type is float else ""
            )
            raise ConfigError(f"parameter {p.name} takes {p.type.__name__}{hint}: {exc}") from None
        except InvalidParameterValueException as exc:
            raise ConfigError(f"parameter {p.name}: {exc}; {p.constraints()}") from None
        p.check(values[p.name], enforce_choices=not p.reloads)

    def refuse_out_of_choices(changed) -> SetParametersResult:
        # rclpy checks type, range and read-only itself; the choices are the schema's own check.
        for c in changed:
            p = params.get(c.name)
            if p is not None and p.choices and not p.reloads:
                try:
                    p.check(c.value)
                except ConfigError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(refuse_out_of_choices)
    return values
