"""Configuration dataclasses (:mod:`exo_common.params`) as typed, range-checked ROS parameters.

Each field becomes a parameter whose descriptor carries its description and range, read-only
unless the field is marked live. A live update is validated by rebuilding the whole
configuration, so an absurd value is rejected with a reason naming it and the node keeps running
on the previous values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import (
    InvalidParameterValueException,
    ParameterException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from exo_common.params import ConfigError, config_from_mapping, field_default, field_specs


def _descriptor(default: Any, fs) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=fs.description, read_only=not fs.live)
    if fs.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(fs.choices)
    elif isinstance(default, bool):
        pass
    elif isinstance(default, int) and fs.low is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(fs.low), to_value=int(fs.high),
                                                 step=1)]
    elif isinstance(default, float) and fs.low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(fs.low),
                                                              to_value=float(fs.high), step=0.0)]
    return descriptor


def declare_config(node: Node, config_type: type, prefix: str = "") -> Any:
    """Declare one parameter per configuration field and return the validated configuration.

    ``prefix`` (e.g. ``"sim."``) keeps two configurations with a field of the same name apart.
    An empty list default declares a string array without a value (rclpy cannot type ``[]``).
    """
    for name, (field, fs) in field_specs(config_type).items():
        default = field_default(field)
        value = Parameter.Type.STRING_ARRAY if default == [] else default
        try:
            node.declare_parameter(prefix + name, value, _descriptor(default, fs))
        except (InvalidParameterValueException, ParameterException) as exc:
            raise ConfigError(f"{node.get_name()}: parameter {prefix}{name}: {exc}") from exc
    return read_config(node, config_type, prefix)


def read_config(node: Node, config_type: type, prefix: str = "") -> Any:
    """The configuration from the node's current (declared) parameter values, validated."""
    values = {}
    for name, (field, _) in field_specs(config_type).items():
        try:
            values[name] = node.get_parameter(prefix + name).value
        except ParameterUninitializedException:  # a string array left unset
            values[name] = field_default(field)
    try:
        return config_from_mapping(config_type, values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{node.get_name()}: {exc}") from exc


def watch_live_parameters(node: Node, current: Callable[[], Any],
                          apply: Callable[[Any], None],
                          on_rejected: Callable[[str], None] | None = None) -> None:
    """Validate live parameter changes against the whole configuration, then apply them.

    ``on_rejected(reason)`` runs when a change is refused, for nodes that treat an absurd
    request as a fault of whoever drives them. rclpy checks descriptor ranges before any
    on-set callback, so refusals are detected in a pre-set callback (ROS 2 Iron and newer).
    On Humble, which has no pre/post-set callbacks, only cross-field refusals reach
    ``on_rejected`` and changes are applied as soon as they are validated.
    """
    pending: dict[str, Any] = {}

    def check(parameters) -> tuple[dict[str, Any], str | None]:
        config = current()
        names = field_specs(type(config))
        updates = {p.name: p.value for p in parameters if p.name in names}
        try:
            dataclasses.replace(config, **updates)
        except (TypeError, ValueError) as exc:
            return updates, str(exc)
        return updates, None

    def commit(parameters=None) -> None:
        if pending:
            apply(dataclasses.replace(current(), **pending))
            node.get_logger().info(f"parameters updated: {pending}")
            pending.clear()

    def screen(parameters):
        reason = check(parameters)[1]
        if reason is not None and on_rejected is not None:
            on_rejected(reason)
        return parameters

    def validate(parameters) -> SetParametersResult:
        updates, reason = check(parameters)
        if reason is not None:
            node.get_logger().warning(f"rejected parameter change: {reason}")
            if on_rejected is not None and not has_pre_set:
                on_rejected(reason)
            return SetParametersResult(successful=False, reason=reason)
        pending.clear()
        pending.update(updates)
        if not has_post_set:
            commit()
        return SetParametersResult(successful=True)

    has_pre_set = hasattr(node, "add_pre_set_parameters_callback")
    has_post_set = hasattr(node, "add_post_set_parameters_callback")
    if has_pre_set:
        node.add_pre_set_parameters_callback(screen)
    node.add_on_set_parameters_callback(validate)
    if has_post_set:
        node.add_post_set_parameters_callback(commit)
