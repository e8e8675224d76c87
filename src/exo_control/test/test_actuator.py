"""Simulated Bowden-cable actuator: slack, stiffness, backlash, friction, hip load, faults."""

import math

import pytest
from exo_control.actuator import (
    ActuatorDriver,
    ActuatorNodeConfig,
    Fault,
    SimulatedActuatorConfig,
    SimulatedBowdenActuator,
    load_driver,
)

from exo_msgs.msg import ActuatorState

DT = 1e-3


def drive(sim, seconds, velocity, *, start_s=0.0, enabled=True):
    """Command a constant motor velocity for ``seconds``; return the last reading."""
    t = start_s
    reading = sim.update(t)
    for _ in range(int(round(seconds / DT))):
        t += DT
        sim.command(velocity, velocity, enabled, t)
        reading = sim.update(t)
    return reading, t


def test_fault_bits_match_the_message_constants():
    for fault in Fault:
        if fault is not Fault.NONE:
            assert getattr(ActuatorState, f"FAULT_{fault.name}") == fault.value


def test_slack_cable_carries_no_force_until_taken_up_then_follows_its_stiffness():
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    slack_motor_rad = cfg.slack_m / cfg.cable_m_per_motor_rad  # 2.5 rad
    reading, t = drive(sim, 0.1, 0.8 * slack_motor_rad / 0.1)  # 80 % of the slack
    assert reading.left.force_n == 0.0
    reading, t = drive(sim, 0.1, 0.6 * slack_motor_rad / 0.1, start_s=t)
    reading, t = drive(sim, 0.3, 0.0, start_s=t)  # hold still
    stretch = reading.left.position_rad * cfg.cable_m_per_motor_rad - cfg.slack_m
    assert stretch > 0.0
    assert reading.left.force_n == pytest.approx(cfg.cable_stiffness_n_per_m * stretch, rel=0.02)


def test_a_backlog_of_late_joint_states_does_not_sweep_the_hip_and_snap_the_cable():
    # A CI run: the actuator node was busy while the stream started, then received its queue
    # of joint states within milliseconds; the hip swept through 0.2 rad and the cable read
    # 292 N. Samples older than max_hip_sample_age_s are history: they move nothing.
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    _, t = drive(sim, 0.1, 0.0)
    for k in range(20):  # 200 ms of a flexing hip, delivered at once 0.2 s late
        sim.set_hip_angles(0.01 * k, 0.01 * k, age_s=0.195 - 0.01 * k)
    assert sim.stale_hip_samples == 15  # the last five are within 50 ms of now (0.15 fitted)
    reading, t = drive(sim, 0.05, 0.0, start_s=t)
    assert reading.left.force_n == 0.0 and reading.right.force_n == 0.0
    sim.set_hip_angles(0.3, 0.3, age_s=0.0)  # fresh: 0.15 rad past the fitted 0.15, 15 mm path
    reading, _ = drive(sim, 0.1, 0.0, start_s=t)
    assert reading.left.force_n == pytest.approx(cfg.cable_stiffness_n_per_m * 0.010, rel=0.05)
    assert sim.stale_hip_samples == 15


def test_joint_states_that_resume_far_away_are_caught_up_with_not_jumped_to():
    # CI runs: joint states paused at the actuator and resumed 0.3 rad further on; the
    # simulated hip jumped there in one step and the held cable read 222 N. A body covers
    # that path in time: the hip closes the gap at hip_catch_up_rad_s (4 rad/s).
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    sim.set_hip_angles(0.0, 0.0)  # fitted upright
    _, t = drive(sim, 0.05, 0.0)
    sim.set_hip_angles(0.3, 0.01)  # left resumes 0.3 rad away; right moved a normal step
    reading, t = drive(sim, 0.01, 0.0, start_s=t)  # 10 ms on: the left hip is at 0.04 rad
    assert reading.left.force_n == 0.0
    reading, _ = drive(sim, 0.1, 0.0, start_s=t)  # caught up: 30 mm path, 25 mm past slack
    assert reading.left.force_n == pytest.approx(cfg.cable_stiffness_n_per_m * 0.025, rel=0.05)
    assert reading.right.force_n == 0.0


def test_hip_flexion_stretches_an_extension_cable_and_extension_slackens_it():
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    sim.set_hip_angles(0.0, 0.0)  # fitted standing upright
    sim.set_hip_angles(0.1, -0.1)  # left flexed 0.1 rad: 10 mm path, 5 mm past the slack
    reading, _ = drive(sim, 0.2, 0.0)
    assert reading.left.force_n == pytest.approx(cfg.cable_stiffness_n_per_m * 0.005, rel=0.05)
    assert reading.right.force_n == 0.0


def test_flexion_cable_is_stretched_by_hip_extension():
    sim = SimulatedBowdenActuator(SimulatedActuatorConfig(direction="flexion", backlash_rad=0.0))
    sim.set_hip_angles(0.0, 0.0)
    sim.set_hip_angles(-0.1, 0.1)
    reading, _ = drive(sim, 0.2, 0.0)
    assert reading.left.force_n > 0.0 and reading.right.force_n == 0.0


def test_the_first_hip_angle_is_the_fitted_posture_so_a_mid_stride_start_pulls_nothing():
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    drive(sim, 0.1, 0.0)
    sim.set_hip_angles(0.5, 0.5)  # the stream starts with the hips flexed 0.5 rad (50 mm path)
    reading, t = drive(sim, 0.1, 0.0, start_s=0.1)
    assert reading.left.force_n == 0.0 and reading.right.force_n == 0.0
    sim.set_hip_angles(0.6, 0.5)  # from there on the hip is a moving load as before
    reading, _ = drive(sim, 0.1, 0.0, start_s=t)
    assert reading.left.force_n == pytest.approx(cfg.cable_stiffness_n_per_m * 0.005, rel=0.05)
    assert reading.right.force_n == 0.0


def test_backlash_delays_the_force_after_a_reversal():
    def force_after_reversal(backlash):
        cfg = SimulatedActuatorConfig(backlash_rad=backlash, slack_m=0.0,
                                      cable_damping_n_s_per_m=0.0)
        sim = SimulatedBowdenActuator(cfg)
        _, t = drive(sim, 0.1, -50.0, enabled=True)  # pay out (cable goes slack)
        reading, _ = drive(sim, 0.08, 100.0, start_s=t)  # reel back in, 3 rad past the start
        return reading.left.force_n

    assert force_after_reversal(0.2) < force_after_reversal(0.0) - 10.0


def test_coulomb_friction_holds_the_motor_against_a_small_load():
    cfg = SimulatedActuatorConfig(backlash_rad=0.0, coulomb_friction_nm=0.5,
                                  cable_damping_n_s_per_m=0.0)
    sim = SimulatedBowdenActuator(cfg)
    sim.set_hip_angles(0.0, 0.0)  # fitted upright
    sim.set_hip_angles(0.1, 0.1)  # 40 N of tension: 0.08 N m at the motor, below 0.5 N m
    reading, _ = drive(sim, 0.3, 0.0, enabled=False)  # drive off: only friction holds it
    assert reading.left.force_n > 30.0 and reading.left.velocity_rad_s == 0.0


def test_missing_commands_switch_the_drive_off_so_a_loaded_cable_backdrives_it():
    sim = SimulatedBowdenActuator()
    sim.set_hip_angles(0.0, 0.0)  # fitted upright
    reading, t = drive(sim, 0.1, 100.0)  # reel in: the cable is taut and loaded
    assert reading.left.force_n > 50.0 and not reading.left.fault_flags
    for _ in range(100):  # 100 ms without a command
        t += DT
        reading = sim.update(t)
    assert reading.left.fault_flags & Fault.COMMAND_TIMEOUT
    assert reading.left.force_n < 10.0  # paid out by the cable itself: no brake


def test_nan_command_switches_the_drive_off_instead_of_integrating_nan():
    sim = SimulatedBowdenActuator()
    _, t = drive(sim, 0.05, 100.0)
    moving = sim.update(t).left.velocity_rad_s
    reading, _ = drive(sim, 0.05, math.nan, start_s=t)
    assert math.isfinite(reading.left.position_rad)
    assert reading.left.velocity_rad_s < moving  # not driven: the taut cable backdrives it


def test_injected_faults_are_reported_and_a_sensor_fault_reads_nan():
    sim = SimulatedBowdenActuator()
    sim.injected_faults = Fault.SENSOR | Fault.DRIVER
    reading, _ = drive(sim, 0.01, 100.0)
    assert reading.left.fault_flags & Fault.SENSOR and reading.right.fault_flags & Fault.DRIVER
    assert math.isnan(reading.left.force_n)
    assert abs(reading.left.velocity_rad_s) < 1.0  # a driver fault switches the drive off


def test_over_force_is_flagged():
    sim = SimulatedBowdenActuator(SimulatedActuatorConfig(fault_force_n=50.0))
    sim.set_hip_angles(0.0, 0.0)  # fitted upright
    sim.set_hip_angles(0.3, 0.0)
    reading, _ = drive(sim, 0.1, 0.0)  # the drive holds the motor still
    assert reading.left.fault_flags & Fault.OVER_FORCE and not reading.right.fault_flags


def test_a_stalled_caller_is_integrated_with_the_drive_timing_out():
    sim = SimulatedBowdenActuator()
    _, t = drive(sim, 0.05, 100.0)
    sim.command(100.0, 100.0, True, t)
    reading = sim.update(t + 10.0)  # ten seconds late: at most max_gap_s is integrated
    # The drive ran the last command until its own timeout, then switched off, and the taut
    # cable backdrove it to slack.
    assert math.isfinite(reading.left.position_rad)
    assert reading.left.force_n < 10.0
    assert reading.left.fault_flags & Fault.COMMAND_TIMEOUT


def test_an_absurd_hip_angle_is_a_sensor_fault_not_a_force():
    sim = SimulatedBowdenActuator()
    sim.set_hip_angles(0.1, 0.1)
    sim.set_hip_angles(7e3, 0.1)
    reading, _ = drive(sim, 0.01, 0.0)
    assert reading.left.fault_flags & Fault.SENSOR
    assert reading.left.force_n < 10.0 and reading.right.force_n < 10.0


def test_the_simulation_states_its_transmission():
    config = SimulatedActuatorConfig(gear_ratio=12.0, spool_radius_m=0.03)
    assert SimulatedBowdenActuator(config).geometry() == (12.0, 0.03)


def test_driver_lookup_gives_the_simulation_and_names_unknown_drivers():
    assert isinstance(load_driver("simulated"), ActuatorDriver)
    with pytest.raises(ValueError, match="unknown actuator driver 'canbus'.*simulated"):
        load_driver("canbus")


@pytest.mark.parametrize("config_type, field, value", [
    (SimulatedActuatorConfig, "cable_stiffness_n_per_m", -10.0),
    (SimulatedActuatorConfig, "motor_inertia_kg_m2", 0.0),
    (SimulatedActuatorConfig, "direction", "up"),
    (ActuatorNodeConfig, "state_publish_rate_hz", 1e6),
    (ActuatorNodeConfig, "joint_names", ["only_one"]),
])
def test_absurd_parameters_are_rejected_with_their_name(config_type, field, value):
    with pytest.raises(ValueError, match=field):
        config_type(**{field: value})
