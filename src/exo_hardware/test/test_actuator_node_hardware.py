"""The actuator node on each hardware driver, as a process over real DDS (opensourceleg offline).

What assist.launch.py does for ``driver:=tmotor|dephy``: the shipped parameter file goes to
``simulated_actuator`` and is named in EXO_HARDWARE_CONFIG. Offline, the drives read zeros, so
a reference leaves the fast loop tracking; when the references stop it must release to slack,
and SIGINT must end the process cleanly through the driver's close.
"""

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from exo_common.topics import ACTUATOR_STATE, FORCE_REFERENCE  # noqa: E402

from exo_msgs.msg import ActuatorState, CableForceReference  # noqa: E402

pytestmark = pytest.mark.usefixtures("hardware_libraries")  # conftest.py: skip without them

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def offline_copy(driver: str, folder: Path) -> Path:
    """The shipped file with ``hw.offline: true`` (and the current estimate for Dephy: the
    load-cell ADC needs spidev even offline)."""
    data = yaml.safe_load((CONFIG_DIR / f"{driver}.yaml").read_text())
    hw = data["simulated_actuator"]["ros__parameters"]["hw"]
    hw["offline"] = True
    if hw.get("force_source") == "loadcell":
        hw.update(force_source="estimate", force_uncertainty_fraction=0.35)
    path = folder / f"{driver}_offline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def flexsea_stand_in(folder: Path) -> str:
    """A folder with an empty flexsea.device.Device, which offline mode never constructs."""
    package = folder / "stand_in" / "flexsea"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "device.py").write_text("class Device:\n    pass\n")
    return str(package.parent)


@pytest.mark.parametrize("driver", ["tmotor", "dephy"])
def test_node_runs_the_fast_loop_on_the_driver_and_releases(driver, tmp_path, monkeypatch,
                                                            ros_node, spin_until, start_node):
    params = offline_copy(driver, tmp_path)
    monkeypatch.setenv("EXO_HARDWARE_CONFIG", str(params))
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    if driver == "dephy" and importlib.util.find_spec("flexsea") is None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            p for p in (flexsea_stand_in(tmp_path), os.environ.get("PYTHONPATH")) if p))
    states: list[ActuatorState] = []
    ros_node.create_subscription(ActuatorState, "/actuator/state", states.append,
                                 ACTUATOR_STATE.publish_qos)
    reference = ros_node.create_publisher(CableForceReference, "/actuator/force_reference",
                                          FORCE_REFERENCE.publish_qos)
    proc = start_node("simulated_actuator", "--ros-args", "--params-file", str(params))
    assert spin_until(ros_node, lambda: bool(states), 60.0), proc.output()

    def tracking() -> bool:
        msg = CableForceReference(enabled=True, left_force_n=20.0, right_force_n=20.0)
        msg.header.stamp = ros_node.get_clock().now().to_msg()
        reference.publish(msg)
        return any(s.mode == ActuatorState.MODE_TRACKING and s.left_fault_flags == 0
                   for s in states[-5:])

    while not spin_until(ros_node, tracking, 0.02):  # references at about 50 Hz
        assert proc.alive() and len(states) < 4000, proc.output()
    tracked = len(states)
    # No more references: COMMAND_TIMEOUT, release, then slack held.
    assert spin_until(ros_node, lambda: states[-1].mode == ActuatorState.MODE_SLACK, 30.0), \
        [(s.mode, s.left_fault_flags) for s in states[tracked:]][:40]
    after = states[tracked:]
    assert all(s.mode != ActuatorState.MODE_TRACKING for s in after[-10:])
    assert any(s.left_fault_flags & ActuatorState.FAULT_COMMAND_TIMEOUT for s in after)
    assert any(s.mode == ActuatorState.MODE_RELEASING for s in after)
    assert proc.stop() == 0, proc.output()
    assert f"actuator driver '{driver}', force loop at 1000 Hz" in proc.output()
