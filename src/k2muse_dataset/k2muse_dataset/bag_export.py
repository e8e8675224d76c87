"""Export a trial to a rosbag2 bag (MCAP storage) through rosbags, replayable by ros2 bag play.

Topics: ``/joint_states`` (sensor_msgs/JointState at the capture rate; position = sagittal
joint angle in rad, velocity in rad/s, effort = measured internal joint moment in N·m/kg) and
``/gait_events`` (exo_msgs/GaitEvent, registered from its .msg text). Stamps start at
``start_time_ns`` plus the trial time (0 at the trigger).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from k2muse_model.features import angular_velocity
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from .atomic import staging_prefix, sweep_leftovers
from .trial_h5 import JOINTS, SIDES, Trial

GAIT_EVENT_TYPE = "exo_msgs/msg/GaitEvent"
DEFAULT_START_NS = 1_700_000_000_000_000_000


class BagExportError(RuntimeError):
    """The bag could not be written."""


def find_gait_event_msg() -> Path:
    """Locate GaitEvent.msg: installed share folders first, then the source tree."""
    candidates = [Path(prefix) / "share/exo_msgs/msg/GaitEvent.msg"
                  for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if prefix]
    candidates += [Path(sys.prefix) / "share/exo_msgs/msg/GaitEvent.msg",
                   Path(__file__).resolve().parents[2] / "exo_msgs/msg/GaitEvent.msg"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BagExportError("exo_msgs/msg/GaitEvent.msg not found (looked in "
                         f"{', '.join(str(c) for c in candidates)})")


def make_typestore():
    """ROS 2 Jazzy types plus exo_msgs/GaitEvent."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    typestore.register(get_types_from_msg(find_gait_event_msg().read_text(), GAIT_EVENT_TYPE))
    return typestore


def joint_names(prefixes: tuple[str, ...] = SIDES) -> list[str]:
    """``left_hip_joint, right_hip_joint, left_knee_joint, ...`` (hips first)."""
    return [f"{side}_{joint}_joint" for joint in JOINTS for side in prefixes]


def export_trial_bag(trial: Trial, bag_path: str | Path, start_time_ns: int = DEFAULT_START_NS,
                     overwrite: bool = False) -> Path:
    """Write ``trial`` to a new MCAP bag folder; refuse to replace an existing one by default.

    The trial is checked against the trial contract first, and the bag is written into a
    temporary folder that is renamed only when complete.
    """
    bag_path = Path(bag_path)
    trial.validate()
    times = np.concatenate([trial.time_s[[0, -1]], trial.event_time_s])
    first_ns = start_time_ns + round(float(times.min()) * 1e9)
    last_ns = start_time_ns + round(float(times.max()) * 1e9)
    if first_ns < 0 or last_ns >= (1 << 31) * 1_000_000_000:
        raise BagExportError(f"{bag_path}: stamps {first_ns}..{last_ns} ns do not fit a ROS "
                             "time (0 .. 2**31 s); choose another start time")
    if bag_path.exists():
        if not overwrite:
            raise BagExportError(f"{bag_path}: already exists (use overwrite)")
        shutil.rmtree(bag_path)
    typestore = make_typestore()
    joint_state = typestore.types["sensor_msgs/msg/JointState"]
    header_t = typestore.types["std_msgs/msg/Header"]
    stamp_t = typestore.types["builtin_interfaces/msg/Time"]
    gait_event = typestore.types[GAIT_EVENT_TYPE]
    names = joint_names()
    columns = [(joint, side) for joint in JOINTS for side in range(2)]
    available = [(j, s) for j, s in columns if j in trial.angles_rad]
    names = [n for n, c in zip(names, columns, strict=True) if c in available]
    position = np.stack([trial.angles_rad[j][:, s, 0] for j, s in available], axis=1)
    # The models' velocity definition, so a replayed bag and its trial file agree.
    velocity = angular_velocity(position, trial.sample_rate_hz)
    effort = np.stack([trial.moments_nm_per_kg[j][:, s, 0] if j in trial.moments_nm_per_kg
                       else np.full(trial.n_samples, np.nan) for j, s in available], axis=1)

    def header(t_ns: int, frame: str):
        return header_t(stamp=stamp_t(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000),
                        frame_id=frame)

    bag_path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(bag_path.parent)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(bag_path), dir=bag_path.parent))
    tmp = staging / "bag"  # the Writer creates it (it refuses an existing folder)
    try:
        with Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            js_conn = writer.add_connection("/joint_states", joint_state.__msgtype__,
                                            typestore=typestore)
            ev_conn = writer.add_connection("/gait_events", GAIT_EVENT_TYPE, typestore=typestore)
            stamps = start_time_ns + np.rint(trial.time_s * 1e9).astype(np.int64)
            for i, t_ns in enumerate(stamps):
                msg = joint_state(header=header(int(t_ns), ""), name=names,
                                  position=position[i], velocity=velocity[i], effort=effort[i])
                writer.write(js_conn, int(t_ns), typestore.serialize_cdr(msg, msg.__msgtype__))
            for t, side, kind in zip(trial.event_time_s, trial.event_side, trial.event_kind,
                                     strict=True):
                t_ns = start_time_ns + int(round(t * 1e9))
                msg = gait_event(header=header(t_ns, ""), side=int(side), kind=int(kind))
                writer.write(ev_conn, t_ns, typestore.serialize_cdr(msg, GAIT_EVENT_TYPE))
        os.replace(tmp, bag_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bag_path
