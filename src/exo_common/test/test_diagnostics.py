"""The diagnostics helper over real DDS: one status named "<package>: <role>"."""

import pytest

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from exo_common.diagnostics import WARN, Diagnostics  # noqa: E402


def test_status_arrives_named_and_with_string_values(ros_node, spin_until):
    received = []
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
    diagnostics = Diagnostics(ros_node, "exo_control", "actuator")

    def published():
        diagnostics.publish(WARN, "slack", {"force_n": 1.23456789, "faults": 0},
                            hardware_id="simulated")
        return bool(received)

    assert spin_until(ros_node, published, 10.0)
    status = received[0].status[0]
    assert status.name == "exo_control: actuator" and status.hardware_id == "simulated"
    assert status.level == DiagnosticStatus.WARN and status.message == "slack"
    assert {v.key: v.value for v in status.values} == {"force_n": "1.23457", "faults": "0"}
    assert received[0].header.stamp.sec > 0
