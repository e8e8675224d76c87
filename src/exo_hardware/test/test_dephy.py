"""Dephy driver: opensourceleg's DephyActuator offline, and the port's scaling and faults.

flexsea (Dephy's library) is not installed here (it pulls boto3, pandas and a pendulum 2 that
has no wheel for this Python): opensourceleg's DephyActuator subclasses flexsea's Device but
constructs it only online, so where flexsea is missing an empty stand-in module lets the real
DephyActuator run in offline mode. Readings are checked on a stand-in that has the attributes
DephyActuator exposes (mA, rad, rad/s), since offline mode only returns constants.
"""

import math
import sys
import types

import pytest
from exo_control.actuator import Fault
from exo_control.force_loop import ForceLoop, ForceLoopConfig, ForceReference, Mode
from exo_hardware.cable_driver import CableActuatorDriver

from exo_hardware.config import HardwareConfig

# No module-level importorskip: launch_testing's collection hook imports every test file of the
# folder, and a skip raised there would hide this folder's other tests too.
try:
    from exo_hardware.osl_ports import AdcLoadCells, DephyPort, dephy_actuator
    from opensourceleg.actuators.base import CONTROL_MODES
    from opensourceleg.math import I2tLimitException
except ModuleNotFoundError as exc:
    MISSING = f"{exc}: an optional hardware dependency (tools/requirements-hardware.txt)"
else:
    MISSING = None
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

CONFIG = HardwareConfig(torque_constant_nm_per_a=0.1133, fault_velocity_rad_s=500.0)


@pytest.fixture
def offline_flexsea(monkeypatch, tmp_path):
    """flexsea where installed, else a stand-in Device that offline mode never constructs."""
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    try:
        import flexsea.device  # noqa: F401
    except ImportError:
        package = types.ModuleType("flexsea")
        device = types.ModuleType("flexsea.device")
        device.Device = type("Device", (), {})
        monkeypatch.setitem(sys.modules, "flexsea", package)
        monkeypatch.setitem(sys.modules, "flexsea.device", device)
        monkeypatch.delitem(sys.modules, "opensourceleg.actuators.dephy", raising=False)


class DephyStandIn:
    """The attributes of opensourceleg's DephyActuator that DephyPort uses."""

    def __init__(self):
        self.motor_position, self.motor_velocity = 0.0, 0.0
        self.motor_current, self.case_temperature = 0.0, 30.0  # mA, deg C
        self.currents_ma: list[float] = []
        self.mode = CONTROL_MODES.IDLE
        self.fail_update: Exception | None = None
        self.stopped = False

    def start(self):
        pass

    def stop(self):
        self.stopped = True

    def update(self):
        if self.fail_update is not None:
            raise self.fail_update

    def set_control_mode(self, mode):
        self.mode = mode

    def set_current_gains(self):
        pass

    def set_motor_current(self, value):
        assert self.mode == CONTROL_MODES.CURRENT
        self.currents_ma.append(value)


def stand_in_driver():
    left, right = DephyStandIn(), DephyStandIn()
    driver = CableActuatorDriver(CONFIG, DephyPort(CONFIG, left), DephyPort(CONFIG, right))
    driver.start(0.0)
    return driver, left, right


def test_real_dephy_actuator_runs_offline_in_current_mode(offline_flexsea):
    config = HardwareConfig(offline=True)
    actuators = [dephy_actuator(config, port) for port in ("/dev/none0", "/dev/none1")]
    assert type(actuators[0]).__name__ == "OfflineDephyActuator"
    driver = CableActuatorDriver(config, *(DephyPort(config, a) for a in actuators))
    driver.start(0.0)
    assert actuators[0].mode == CONTROL_MODES.CURRENT
    reading = driver.update(0.001)
    assert reading.left.fault_flags == reading.right.fault_flags == 0
    driver.command(50.0, 50.0, True, 0.001)
    assert driver.driving
    driver.close()
    assert not driver.driving


def test_missing_port_is_refused_before_the_library_exits_the_process(offline_flexsea):
    with pytest.raises(OSError, match="cannot open Dephy port /dev/no-such-dephy"):
        dephy_actuator(HardwareConfig(), "/dev/no-such-dephy")


def test_readings_are_si_with_sign_and_current_estimate():
    driver, left, right = stand_in_driver()
    for actuator in (left, right):
        actuator.motor_position, actuator.motor_velocity = 2.0, 30.0
        actuator.motor_current = 1500.0  # mA
    reading = driver.update(0.001)
    force = 1.5 * 0.1133 * 9.0 / 0.03
    assert (reading.left.position_rad, reading.left.velocity_rad_s) == (2.0, 30.0)
    assert reading.left.force_n == pytest.approx(force)
    assert (reading.right.position_rad, reading.right.velocity_rad_s) == (-2.0, -30.0)
    assert reading.right.force_n == pytest.approx(-force)


def test_velocity_loop_in_the_driver_sets_current_with_sign_and_limit():
    driver, left, right = stand_in_driver()
    driver.update(0.0)
    driver.command(20.0, 20.0, True, 0.0)  # 0.2 N m, within the 0.5 N m limit
    gain_ma = 1000.0 * CONFIG.velocity_gain_nm_s_per_rad * 20.0 / 0.1133
    assert left.currents_ma[-1] == pytest.approx(gain_ma)  # reels in: positive current
    assert right.currents_ma[-1] == pytest.approx(-gain_ma)  # mirrored motor
    driver.command(5000.0, 0.0, True, 0.001)  # far beyond the torque limit
    assert left.currents_ma[-1] == pytest.approx(1000.0 * CONFIG.max_motor_torque_nm / 0.1133)


def test_library_limit_exception_is_driver_fault_and_zero_current():
    driver, left, right = stand_in_driver()
    driver.update(0.0)
    driver.command(100.0, 100.0, True, 0.0)
    left.fail_update = I2tLimitException()
    reading = driver.update(0.001)
    assert reading.left.fault_flags & Fault.DRIVER
    assert math.isnan(reading.left.force_n)
    driver.command(100.0, 100.0, True, 0.001)
    assert left.currents_ma[-1] == right.currents_ma[-1] == 0.0


def test_close_zeroes_current_and_stops_both():
    driver, left, right = stand_in_driver()
    driver.command(100.0, 100.0, True, 0.0)
    driver.close()
    assert left.currents_ma[-1] == right.currents_ma[-1] == 0.0
    assert left.stopped and right.stopped


def test_force_loop_releases_through_dephy_ports_on_over_force():
    """The real fast loop on the Dephy ports: a tension above its limit ends in release."""
    driver, left, right = stand_in_driver()
    loop = ForceLoop(ForceLoopConfig(gear_ratio=9.0, spool_radius_m=0.03))
    loop.activate()
    modes = []
    for step in range(400):
        now = step * 0.001
        # 34 N, then 221 N: above max_force_n (200 N), its bound 298 N below fault_force_n
        amps = 6.5 if step >= 350 else 1.0
        left.motor_current = 1000.0 * amps
        right.motor_current = -1000.0  # the mirrored motor pulls with negative current
        loop.set_reference(ForceReference(True, (40.0, 40.0), (0.0, 0.0), now))
        out = loop.step(now, driver.update(now))
        driver.command(out.left.velocity_command_rad_s, out.right.velocity_command_rad_s,
                       out.drive_enabled, now)
        modes.append(out.mode)
    assert modes[349] == Mode.TRACKING
    assert modes[-1] == Mode.RELEASING
    assert left.currents_ma[-1] < 0.0, "the loop pays the left cable out"
    left.motor_current = 9000.0  # 306 N measured: the driver itself faults, zero torque
    out = loop.step(0.4, driver.update(0.4))
    driver.command(out.left.velocity_command_rad_s, out.right.velocity_command_rad_s,
                   out.drive_enabled, 0.4)
    assert out.faults & Fault.OVER_FORCE and left.currents_ma[-1] == 0.0


def test_load_cells_are_zeroed_at_start_and_scaled_to_newtons():
    class Adc:  # opensourceleg's ADS131M0x interface: update(), data in mV per channel
        data = [0.5, 0.0, -0.2]

        def start(self):
            pass

        def update(self):
            pass

    adc = Adc()
    cells = AdcLoadCells(HardwareConfig(left_adc_channel=0, right_adc_channel=2,
                                        loadcell_n_per_mv=10.0), adc)
    cells.start()
    adc.data = [3.5, 9.0, 1.8]
    assert cells.read() == pytest.approx((30.0, 20.0))
