"""Write the graph's topics to an MCAP rosbag2 bag with rosbags (no ROS imports).

The recorder node hands over each message as the CDR bytes it received, so nothing is decoded
or re-encoded on the way to disk. The bag is written inside a hidden ``.<name>.part`` folder
beside the target and moved onto the target only when it is closed; an existing bag is never
overwritten, and a recorder that dies leaves its partial bag inside the ``.part`` folder.

The exo_msgs types are registered in the rosbags typestore from the package's own ``.msg``
texts, so readers and writers agree with the interfaces the nodes were built from.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from exo_common.params import spec, validate_fields
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

# Topic -> message type of everything the assistance graph publishes (docs/architecture.md 3).
GRAPH_TOPICS: dict[str, str] = {
    "/joint_states": "sensor_msgs/msg/JointState",
    "/gait_events": "exo_msgs/msg/GaitEvent",
    "/hip_moment/estimate": "exo_msgs/msg/HipMomentEstimate",
    "/assistance/command": "exo_msgs/msg/AssistanceCommand",
    "/assistance/enable": "std_msgs/msg/Bool",
    "/actuator/force_reference": "exo_msgs/msg/CableForceReference",
    "/actuator/motor_command": "exo_msgs/msg/MotorCommand",
    "/actuator/state": "exo_msgs/msg/ActuatorState",
    "/controller/state": "exo_msgs/msg/ControllerState",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}
DEFAULT_TOPICS = (
    "/joint_states", "/gait_events", "/hip_moment/estimate", "/assistance/command",
    "/actuator/force_reference", "/actuator/motor_command", "/actuator/state",
    "/controller/state",
)


@dataclass(frozen=True)
class RecorderNodeConfig:
    """Parameters of the ``topic_recorder`` node."""

    output: str = spec("", "bag folder to create (must not exist yet)")
    topics: list[str] = spec(DEFAULT_TOPICS, "topics to record (names from"
                             " docs/architecture.md section 3)")
    realtime_priority: int = spec(0, "SCHED_FIFO priority (0: normal scheduling); below the"
                                  " control chain when raised", 0, 98)

    def __post_init__(self) -> None:
        validate_fields(self)


class RecorderError(RuntimeError):
    """A recording that cannot be started or written; the message names the path."""


def exo_msgs_msg_dir() -> Path:
    """Folder holding exo_msgs' ``.msg`` files (found as k2muse_dataset's bag export finds it)."""
    from k2muse_dataset.bag_export import BagExportError, find_gait_event_msg

    try:
        return find_gait_event_msg().parent
    except BagExportError as exc:
        raise RecorderError(str(exc)) from None


@functools.cache
def exo_typestore() -> Typestore:
    """A Jazzy typestore with every exo_msgs message registered from its ``.msg`` text."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for msg_file in sorted(exo_msgs_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(msg_file.read_text(), f"exo_msgs/msg/{msg_file.stem}"))
    store.register(types)
    return store


def resolve_topics(topics: Iterable[str]) -> dict[str, str]:
    """Map requested topic names to their types; unknown names raise :class:`RecorderError`."""
    resolved = {}
    for topic in topics:
        if topic not in GRAPH_TOPICS:
            raise RecorderError(f"cannot record {topic!r}: not a topic of the assistance graph "
                                f"({', '.join(GRAPH_TOPICS)})")
        resolved[topic] = GRAPH_TOPICS[topic]
    if not resolved:
        raise RecorderError("no topics to record")
    return resolved


class BagRecording:
    """An MCAP rosbag2 bag being written; call :meth:`close` to publish it under its name."""

    def __init__(self, path: str | Path, topics: dict[str, str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise RecorderError(f"{self.path}: already exists; choose a new bag name")
        self._partial = self.path.parent / f".{self.path.name}.part"
        if self._partial.exists():
            raise RecorderError(f"{self._partial}: a partial recording is in the way; "
                                "move or delete it")
        self._partial.mkdir(parents=True)
        store = exo_typestore()
        # Named like the target inside the partial folder, so the .mcap file keeps its name.
        self._writer = Writer(self._partial / self.path.name, version=9,
                              storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {
            topic: self._writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in topics.items()
        }
        self.counts = dict.fromkeys(topics, 0)
        self._closed = False

    def write(self, topic: str, receive_time_ns: int, cdr_bytes: bytes) -> None:
        """Append one serialized message, stamped with the time it was received."""
        self._writer.write(self._connections[topic], receive_time_ns, cdr_bytes)
        self.counts[topic] += 1

    def close(self) -> Path:
        """Finish the bag (metadata.yaml, MCAP summary) and move it onto its final name."""
        if not self._closed:
            self._closed = True
            self._writer.close()
            (self._partial / self.path.name).rename(self.path)
            self._partial.rmdir()
        return self.path

    def discard(self) -> None:
        """Abandon the recording and delete the partial bag (used when it never started)."""
        if not self._closed:
            self._closed = True
            self._writer.close()
            shutil.rmtree(self._partial, ignore_errors=True)
