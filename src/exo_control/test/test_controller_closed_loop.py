"""Closed loop in pure Python: assistance -> controller -> simulated actuator with a walking hip.

Bound stated here (docs/control.md): at 1 kHz and 500 Hz, with the default gains and plant, a
gait-like force profile up to 100 N is tracked with RMSE below 8 N and the measured force
never exceeds the force limit by more than 10 N, while the hip swings +-0.4 rad at 1 Hz.
"""

import math

import numpy as np
import pytest
from exo_control.actuator import SimulatedActuatorConfig, SimulatedBowdenActuator
from exo_control.assistance import AssistanceConfig, AssistanceProfile, EstimateSample
from exo_control.controller import AdmittanceController, ControllerConfig

RMSE_BOUND_N = 8.0
STRIDE_HZ = 1.0


def hip(t, phase=0.0):
    """Hip flexion angle (rad) and velocity (rad/s) of a 1 Hz gait."""
    w = 2 * math.pi * STRIDE_HZ
    return 0.4 * math.sin(w * t + phase), 0.4 * w * math.cos(w * t + phase)


def hip_moment(t, phase=0.0):
    """A gait-like hip moment, N·m/kg: extension early in the stride, flexion later."""
    w = 2 * math.pi * STRIDE_HZ
    return 0.8 * math.sin(w * t + phase) + 0.2 * math.sin(2 * w * t + phase)


@pytest.mark.parametrize("rate_hz", [1000.0, 500.0])
def test_force_tracking_with_a_walking_wearer(rate_hz):
    dt = 1.0 / rate_hz
    controller = AdmittanceController(ControllerConfig(rate_hz=rate_hz))
    actuator = SimulatedBowdenActuator(SimulatedActuatorConfig(force_noise_n=1.0, seed=4))
    errors, measured = [], []
    for i in range(int(6.0 * rate_hz)):
        t = i * dt
        left, right = hip(t), hip(t, math.pi)
        actuator.set_hip_angles(left[0], right[0], left[1], right[1])
        reading = actuator.update(t)
        controller.set_measurement(reading, t)
        stride = math.sin(2 * math.pi * STRIDE_HZ * t)
        controller.set_command(100.0 * max(0.0, stride) ** 2, 100.0 * max(0.0, -stride) ** 2, t)
        out = controller.step(t)
        actuator.command(out.left.velocity_command_rad_s, out.right.velocity_command_rad_s,
                         out.motor_enabled, t)
        if t > 2.0:  # after the watchdog fade-in and the first stride
            errors.append([out.left.force_error_n, out.right.force_error_n])
            measured.append([reading.left.force_n, reading.right.force_n])
    errors = np.array(errors)
    rmse = np.sqrt(np.mean(errors**2, axis=0))
    assert np.all(rmse < RMSE_BOUND_N), rmse
    assert np.max(measured) < controller.config.max_force_n + 10.0


def test_estimate_to_cable_force_chain():
    """The whole chain at 200 Hz estimates / 1 kHz control tracks the assistance command."""
    profile = AssistanceProfile(AssistanceConfig(enabled_on_start=True, fade_in_s=0.2))
    controller = AdmittanceController(ControllerConfig())
    actuator = SimulatedBowdenActuator()
    command = None
    errors = []
    for i in range(5000):
        t = i * 1e-3
        if i % 5 == 0:
            profile.receive(EstimateSample(t, t, hip_moment(t), hip_moment(t, math.pi), True, True))
            command = profile.step(t)
            controller.set_command(command.left_force_n, command.right_force_n, t)
        left, right = hip(t), hip(t, math.pi)
        actuator.set_hip_angles(left[0], right[0], left[1], right[1])
        reading = actuator.update(t)
        controller.set_measurement(reading, t)
        out = controller.step(t)
        actuator.command(out.left.velocity_command_rad_s, out.right.velocity_command_rad_s,
                         out.motor_enabled, t)
        if t > 2.0:
            errors.append(command.left_force_n - reading.left.force_n)
    assert max(abs(e) for e in errors) < 40.0
    assert math.sqrt(np.mean(np.square(errors))) < RMSE_BOUND_N
