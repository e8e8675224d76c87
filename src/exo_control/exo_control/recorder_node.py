"""``topic_recorder``: record the assistance graph's topics to an MCAP rosbag2 bag.

The stand-in for ``ros2 bag record`` where rosbag2 is missing. Subscriptions are raw (the CDR
bytes go straight into the bag), each with the QoS its publisher offers (docs/architecture.md 3),
and messages are stamped with their receive time on the ROS clock. SIGINT or SIGTERM closes the
bag cleanly; only then does it appear under its name (:class:`exo_control.recorder.BagRecording`).
"""

from __future__ import annotations

import importlib
import sys

from k2muse_inference.node_runner import request_realtime_priority
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from .common_node import run_node
from .recorder import DEFAULT_TOPICS, BagRecording, RecorderError, resolve_topics


def _reliable(depth: int) -> QoSProfile:
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)


# Subscriber QoS per topic: as deep as the publisher's queue, compatible with its reliability.
# Reliable where the graph's publishers are, so nothing is lost to a late match or a slow disk;
# a best-effort (sensor data) encoder publisher is therefore not recorded: record its topic
# with `ros2 bag record --qos-profile-overrides-path` or republish it reliably.
TOPIC_QOS = {
    "/joint_states": _reliable(100),
    "/gait_events": _reliable(20),
    "/hip_moment/estimate": _reliable(100),
    "/assistance/command": _reliable(100),
    "/assistance/enable": QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                     durability=DurabilityPolicy.TRANSIENT_LOCAL),
    "/actuator/force_reference": _reliable(100),
    "/actuator/motor_command": _reliable(100),
    "/actuator/state": _reliable(100),
    "/controller/state": QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT,
                                    history=HistoryPolicy.KEEP_LAST),
    "/diagnostics": _reliable(10),
}


def message_class(msgtype: str) -> type:
    """``exo_msgs/msg/GaitEvent`` -> the generated Python class."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class TopicRecorderNode(Node):
    """Writes every message of the chosen topics into one bag until shut down."""

    def __init__(self) -> None:
        super().__init__("topic_recorder")
        self.declare_parameter("output", "", ParameterDescriptor(
            description="bag folder to create (must not exist yet)", read_only=True))
        self.declare_parameter("topics", list(DEFAULT_TOPICS), ParameterDescriptor(
            description="topics to record (names from docs/architecture.md section 3)",
            read_only=True))
        self.declare_parameter("realtime_priority", 0, ParameterDescriptor(
            description="SCHED_FIFO priority (0: normal scheduling); below the control chain"
                        " when raised",
            read_only=True, integer_range=[IntegerRange(from_value=0, to_value=98, step=1)]))
        request_realtime_priority(self, self.get_parameter("realtime_priority").value)
        output = self.get_parameter("output").value
        if not output:
            raise RecorderError("parameter output is empty; pass -p output:=<bag folder>")
        topics = resolve_topics(self.get_parameter("topics").value)
        self.recording = BagRecording(output, topics)
        for topic, msgtype in topics.items():
            self.create_subscription(message_class(msgtype), topic, self._writer_for(topic),
                                     TOPIC_QOS[topic], raw=True)
        self.get_logger().info(f"recording {', '.join(topics)} to {output}")

    def _writer_for(self, topic: str):
        def write(cdr_bytes: bytes) -> None:
            self.recording.write(topic, self.get_clock().now().nanoseconds, cdr_bytes)
        return write

    def close(self) -> None:
        """Finish the bag and report what it holds."""
        path = self.recording.close()
        counts = ", ".join(f"{topic} {n}" for topic, n in self.recording.counts.items())
        print(f"topic_recorder: wrote {path} ({counts})", flush=True)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``topic_recorder``."""
    return run_node(TopicRecorderNode, args, user_errors=(RecorderError,))


if __name__ == "__main__":
    sys.exit(main())
