"""Admittance controller: watchdog faults, limits and anti-windup, against a simulated actuator."""

import math

import numpy as np
import pytest
from exo_control.actuator import (
    ActuatorReading,
    Fault,
    SideReading,
    SimulatedActuatorConfig,
    SimulatedBowdenActuator,
)
from exo_control.controller import AdmittanceController, ControllerConfig, Watchdog

from exo_msgs.msg import ControllerState

RATE = 1000.0
DT = 1.0 / RATE


class Rig:
    """Controller + simulated actuator stepped together; faults are injected between them."""

    def __init__(self, **config):
        self.cfg = ControllerConfig(rate_hz=RATE, **config)
        self.controller = AdmittanceController(self.cfg)
        self.actuator = SimulatedBowdenActuator(SimulatedActuatorConfig())
        self.actuator.set_hip_angles(0.0, 0.0)  # suit fitted standing upright
        self.t = 0.0
        self.outputs = []

    def run(self, seconds, force_n=100.0, *, send_command=True, send_state=True,
            corrupt=None):
        for _ in range(int(round(seconds * RATE))):
            self.t += DT
            reading = self.actuator.update(self.t)
            if corrupt is not None:
                reading = corrupt(reading)
            if send_state:
                self.controller.set_measurement(reading, self.t)
            if send_command:
                self.controller.set_command(force_n, force_n, self.t)
            out = self.controller.step(self.t)
            self.actuator.command(out.left.velocity_command_rad_s,
                                  out.right.velocity_command_rad_s, out.motor_enabled, self.t)
            self.outputs.append(out)
        return self.outputs[-1]

    def settled(self):
        out = self.run(1.0)
        assert out.watchdog == Watchdog.OK
        assert self.actuator.update(self.t).left.force_n == pytest.approx(100.0, abs=3.0)
        return len(self.outputs)

    def series(self, start, attr):
        return np.array([getattr(o.left, attr) for o in self.outputs[start:]])


def test_watchdog_values_match_the_message_constants():
    for verdict in Watchdog:
        assert getattr(ControllerState, f"WATCHDOG_{verdict.name}") == verdict.value


def test_no_input_at_start_keeps_the_motor_disabled():
    controller = AdmittanceController(ControllerConfig())
    out = controller.step(0.0)
    assert out.watchdog == Watchdog.STALE_ACTUATOR
    assert not out.motor_enabled and out.left.velocity_command_rad_s == 0.0


def test_stale_command_unloads_the_cable_then_stops_the_motor():
    rig = Rig()
    start = rig.settled()
    bound = rig.cfg.stop_time_after_stale_command_s()
    out = rig.run(bound, send_command=False)
    assert out.watchdog == Watchdog.STALE_COMMAND and out.output_scale == 0.0
    assert out.left.force_reference_n == 0.0 and out.right.force_reference_n == 0.0
    assert out.left.velocity_command_rad_s == 0.0 and not out.motor_enabled
    reference = rig.series(start, "force_reference_n")
    assert np.all(np.diff(reference) <= 1e-9)  # unloading only, never a pull
    assert rig.actuator.update(rig.t).left.force_n < 5.0  # cable actually unloaded


@pytest.mark.parametrize("fault", ["stale_state", "nan_state", "fault_flag"])
def test_lost_feedback_ramps_velocity_to_zero_within_the_stated_time(fault):
    rig = Rig()
    rig.run(1.0, force_n=0.0)
    rig.actuator.set_hip_angles(0.3, 0.3, 4.0, 4.0)  # make the motor pay out fast
    start = rig.settled()
    rig.run(0.05)  # the hip moves: the loop is now commanding speed
    moving = rig.outputs[-1].left.velocity_command_rad_s
    corrupt = None
    if fault == "nan_state":
        def corrupt(r):
            return ActuatorReading(SideReading(math.nan, r.left.position_rad, 0.0), r.right)
    elif fault == "fault_flag":
        def corrupt(r):
            return ActuatorReading(r.left, SideReading(r.right.force_n, r.right.position_rad,
                                                       r.right.velocity_rad_s, Fault.DRIVER))
    bound = rig.cfg.stop_time_after_feedback_loss_s()
    out = rig.run(bound, send_state=(fault != "stale_state"), corrupt=corrupt)
    expected = {"stale_state": Watchdog.STALE_ACTUATOR, "nan_state": Watchdog.INVALID_INPUT,
                "fault_flag": Watchdog.ACTUATOR_FAULT}[fault]
    assert out.watchdog == expected
    assert out.left.velocity_command_rad_s == 0.0 and out.right.velocity_command_rad_s == 0.0
    assert not out.motor_enabled
    velocity = rig.series(start, "velocity_command_rad_s")
    assert abs(moving) > 0.0
    assert np.abs(np.diff(velocity)).max() <= rig.cfg.max_acceleration_rad_s2 * DT + 1e-9


def test_nan_command_holds_the_last_good_command_while_fading_out():
    rig = Rig()
    rig.settled()
    out = rig.run(0.02, force_n=math.nan)
    assert out.watchdog == Watchdog.INVALID_INPUT and 0.0 < out.output_scale < 1.0
    assert 0.0 < out.left.force_reference_n <= 100.0
    out = rig.run(rig.cfg.unload_time_after_stale_command_s(), force_n=math.nan)
    assert out.left.force_reference_n == 0.0


def test_recovery_fades_back_in():
    rig = Rig()
    rig.settled()
    rig.run(0.5, send_command=False)
    out = rig.run(0.05)
    assert out.watchdog == Watchdog.OK and 0.0 < out.output_scale < 1.0
    rig.run(rig.cfg.watchdog_recover_s + 0.5)
    assert rig.actuator.update(rig.t).left.force_n == pytest.approx(100.0, abs=3.0)


def test_velocity_acceleration_and_force_limits_are_never_exceeded():
    rig = Rig(max_velocity_rad_s=150.0, max_acceleration_rad_s2=5000.0, max_force_n=80.0,
              max_force_rate_n_per_s=500.0)
    rng = np.random.default_rng(1)
    for _ in range(60):  # absurd, jumping commands and a fast-moving hip
        rig.actuator.set_hip_angles(*rng.uniform(-0.5, 0.8, 2), *rng.uniform(-6, 6, 2))
        rig.run(0.02, force_n=float(rng.choice([0.0, 1e6, -1e6, 50.0])))
    v = np.array([[o.left.velocity_command_rad_s, o.right.velocity_command_rad_s]
                  for o in rig.outputs])
    f = np.array([[o.left.force_reference_n, o.right.force_reference_n] for o in rig.outputs])
    assert np.abs(v).max() <= 150.0 and np.abs(np.diff(v, axis=0)).max() <= 5000.0 * DT + 1e-9
    assert f.min() >= 0.0 and f.max() <= 80.0
    assert np.abs(np.diff(f, axis=0)).max() <= 500.0 * DT + 1e-9


def test_anti_windup_bounds_the_reference_when_the_motor_is_blocked():
    cfg = ControllerConfig(rate_hz=RATE)
    controller = AdmittanceController(cfg)
    blocked = ActuatorReading(SideReading(0.0, 1.0, 0.0), SideReading(0.0, 1.0, 0.0))
    for i in range(3000):  # 3 s asking for 100 N from a motor that never moves
        t = i * DT
        controller.set_measurement(blocked, t)
        controller.set_command(100.0, 100.0, t)
        out = controller.step(t)
    reference = controller._loops["left"].reference_angle_rad
    assert abs(reference - 1.0) <= cfg.max_tracking_error_rad + 1e-9
    bound = cfg.max_velocity_rad_s  # velocity command stays within its limit whatever the wind-up
    assert abs(out.left.velocity_command_rad_s) <= bound
    # once the motor is released, the command does not jump: it is bounded by the PD on the
    # clamped reference, i.e. by kp * max_tracking_error plus the (zeroed) feed-forward
    assert abs(out.left.velocity_command_rad_s) <= cfg.kp_per_s * cfg.max_tracking_error_rad + 1


@pytest.mark.parametrize("field, value", [
    ("rate_hz", 1e6), ("max_velocity_rad_s", -1.0), ("virtual_mass_kg", 0.0),
    ("kp_per_s", math.nan), ("max_force_n", 1e5), ("state_timeout_s", 0.0001),
])
def test_absurd_parameters_are_rejected_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        ControllerConfig(**{field: value})
