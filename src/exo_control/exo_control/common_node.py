"""rclpy plumbing shared by the exo_control nodes: QoS per topic, typed parameters, diagnostics.

Parameters come from the pure configuration dataclasses (exo_control.params): each field becomes
a typed parameter whose descriptor carries its description and range, read-only unless the
field is marked live. A live update is validated by rebuilding the whole configuration, so an
absurd value is rejected with a reason and the node keeps running on the previous values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from exo_control.params import config_from_mapping, field_default, field_specs
from k2muse_inference import node_runner


def _qos(depth: int, reliable: bool = True, transient_local: bool = False) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local
        else DurabilityPolicy.VOLATILE,
    )


# docs/architecture.md section 3. Publishers offer reliable delivery, so a recorder or a test
# that asks for every sample gets it.
PUBLISH_QOS = {
    "/joint_states": _qos(10),
    "/hip_moment/estimate": _qos(10),
    "/assistance/command": _qos(10),
    "/assistance/enable": _qos(1, transient_local=True),
    "/actuator/force_reference": _qos(10),
    "/actuator/motor_command": _qos(10),
    "/actuator/state": _qos(10),
    "/controller/state": _qos(10, reliable=False),
    "/diagnostics": _qos(10),
}

# The graph's own subscriptions to latest-value streams ask for best effort (so a publisher
# with qos_profile_sensor_data, as encoder drivers use, is heard as well as a reliable one) and
# keep only the newest sample, so a backlog never turns into latency.
LATEST_VALUE_QOS = _qos(1, reliable=False)
SUBSCRIBE_QOS = {
    "/joint_states": LATEST_VALUE_QOS,
    "/hip_moment/estimate": LATEST_VALUE_QOS,
    "/assistance/command": LATEST_VALUE_QOS,
    "/assistance/enable": PUBLISH_QOS["/assistance/enable"],
    "/actuator/force_reference": LATEST_VALUE_QOS,
    "/actuator/state": LATEST_VALUE_QOS,
}


class ConfigError(ValueError):
    """A node parameter has an absurd value; the message names it."""


def _descriptor(name: str, default: Any, fs) -> ParameterDescriptor:
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
    """
    for name, (field, fs) in field_specs(config_type).items():
        default = field_default(field)
        try:
            node.declare_parameter(prefix + name, default, _descriptor(name, default, fs))
        except (InvalidParameterValueException, ParameterException) as exc:
            raise ConfigError(f"{node.get_name()}: parameter {prefix}{name}: {exc}") from exc
    return read_config(node, config_type, prefix)


def read_config(node: Node, config_type: type, prefix: str = "") -> Any:
    """The configuration from the node's current (declared) parameter values, validated."""
    values = {name: node.get_parameter(prefix + name).value
              for name in field_specs(config_type)}
    try:
        return config_from_mapping(config_type, values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{node.get_name()}: {exc}") from exc


class ManagedNode(LifecycleNode):
    """A lifecycle node: configure validates, activate starts the work, the rest stops safely.

    Subclasses implement ``on_configure``/``on_activate``/``on_deactivate``/``on_cleanup``/
    ``on_shutdown`` and ``close`` (what SIGINT runs). With ``autostart`` the node configures
    and activates itself, so ``ros2 run`` and launch files need no lifecycle manager; a failed
    transition then ends the process with its reason, like an absurd parameter.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.transition_error: str | None = None

    def refuse(self, reason: str) -> TransitionCallbackReturn:
        """Log why a transition is refused and return FAILURE."""
        self.transition_error = reason
        self.get_logger().error(reason)
        return TransitionCallbackReturn.FAILURE

    def autostart(self, enabled: bool) -> None:
        """Configure and activate now when ``enabled``; raise ConfigError if either fails."""
        if not enabled:
            self.get_logger().info("waiting for lifecycle transitions (autostart false)")
            return
        for transition in (self.trigger_configure, self.trigger_activate):
            if transition() != TransitionCallbackReturn.SUCCESS:
                raise ConfigError(self.transition_error
                                  or f"{self.get_name()}: {transition.__name__} failed")


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


def diagnostic_status(name: str, hardware_id: str, level: int, message: str,
                      values: dict[str, Any]) -> DiagnosticStatus:
    """A DiagnosticStatus with its key/values as strings."""
    return DiagnosticStatus(
        level=bytes([level]), name=name, hardware_id=hardware_id, message=message,
        values=[KeyValue(key=k, value=f"{v:.6g}" if isinstance(v, float) else str(v))
                for k, v in values.items()])


def publish_diagnostics(node: Node, publisher, statuses: list[DiagnosticStatus]) -> None:
    """Publish ``statuses`` stamped now."""
    array = DiagnosticArray(status=statuses)
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)


OK, WARN, ERROR = DiagnosticStatus.OK[0], DiagnosticStatus.WARN[0], DiagnosticStatus.ERROR[0]


def stamp_s(stamp) -> float:
    """builtin_interfaces/Time as float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def run_node(node_class: type, args: list[str] | None = None, *,
             user_errors: tuple[type[Exception], ...] = (),
             until: Callable[[Node], bool] | None = None) -> int:
    """Run one of this package's nodes with the workspace's shared entry point.

    A bad parameter exits 2 and one of ``user_errors`` (a missing file, say) exits 1, each
    with a one-line reason instead of a traceback; ``until(node)`` true ends a finite run.
    """
    errors = {ConfigError: (2, ""), **{kind: (1, "") for kind in user_errors}}
    return node_runner.run_node(node_class, args, errors=errors, until=until)
