"""``topic_recorder``: record the assistance graph's topics to an MCAP rosbag2 bag.

The stand-in for ``ros2 bag record`` where rosbag2 is missing. Subscriptions are raw (the CDR
bytes go straight into the bag), each with the QoS its publisher offers and a deep queue
(``record_qos`` of the topic table), and messages are stamped with their receive time on the ROS
clock. SIGINT or SIGTERM closes the bag cleanly; only then does it appear under its name
(:class:`exo_control.recorder.BagRecording`).
"""

from __future__ import annotations

import sys

from exo_common.node_params import declare_config
from exo_common.node_runner import request_realtime_priority, run_node
from exo_common.topics import STREAMS
from rclpy.node import Node

from .recorder import BagRecording, RecorderError, RecorderNodeConfig, resolve_topics


class TopicRecorderNode(Node):
    """Writes every message of the chosen topics into one bag until shut down."""

    def __init__(self) -> None:
        super().__init__("topic_recorder")
        config: RecorderNodeConfig = declare_config(self, RecorderNodeConfig)
        request_realtime_priority(self, config.realtime_priority)
        output = config.output
        if not output:
            raise RecorderError("parameter output is empty; pass -p output:=<bag folder>")
        # The graph's topics as this node's namespace resolves them (the table's names are
        # relative): a recorder started beside a namespaced graph records that graph.
        streams = [STREAMS[topic.lstrip("/")] for topic in resolve_topics(config.topics)]
        topics = {self.resolve_topic_name(s.name): s.msg_type for s in streams}
        self.recording = BagRecording(output, topics)
        for stream, topic in zip(streams, topics, strict=True):
            self.create_subscription(stream.message_class, topic, self._writer_for(topic),
                                     stream.record_qos, raw=True)
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
