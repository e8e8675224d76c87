"""One diagnostics publisher per node, with status names ``"<package>: <node role>"``.

Every node reports one DiagnosticStatus on the table's ``diagnostics`` stream, named the same way
(``"exo_control: actuator"``, ``"k2muse_inference: hip_moment_estimator"``), so a monitor or a test
can find a node's health without knowing how each node spells it.
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from exo_common import topics

OK, WARN, ERROR = DiagnosticStatus.OK[0], DiagnosticStatus.WARN[0], DiagnosticStatus.ERROR[0]


def status_name(package: str, role: str) -> str:
    """The status name of a node: ``"<package>: <node role>"``."""
    return f"{package}: {role}"


def diagnostic_status(name: str, hardware_id: str, level: int, message: str,
                      values: dict[str, Any]) -> DiagnosticStatus:
    """A DiagnosticStatus with its key/values as strings (floats to 6 significant digits)."""
    return DiagnosticStatus(
        level=bytes([level]), name=name, hardware_id=hardware_id, message=message,
        values=[KeyValue(key=k, value=f"{v:.6g}" if isinstance(v, float) else str(v))
                for k, v in values.items()])


class Diagnostics:
    """Publishes a node's status, named ``"<package>: <role>"``, stamped on the node's clock."""

    def __init__(self, node: Node, package: str, role: str) -> None:
        self.node = node
        self.name = status_name(package, role)
        self._publisher = topics.publisher(node, topics.DIAGNOSTICS)

    def publish(self, level: int, message: str, values: dict[str, Any],
                hardware_id: str = "") -> None:
        """Publish one status of this node now."""
        array = DiagnosticArray(status=[diagnostic_status(self.name, hardware_id, level, message,
                                                          values)])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self._publisher.publish(array)
