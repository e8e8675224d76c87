"""Assistance profile: signs, scaling, delay, filter, limits, state machine and faults."""

import dataclasses
import math

import numpy as np
import pytest
from exo_control.assistance import (
    AssistanceConfig,
    AssistanceProfile,
    AssistanceState,
    ButterworthLowPass,
    EnableStateMachine,
    EstimateSample,
)
from scipy import signal

from exo_msgs.msg import AssistanceCommand

RATE = 200.0
DT = 1.0 / RATE


def feed(profile, moments, *, start_s=0.0, valid=True, right=None):
    """Feed one estimate per tick (left = moments, right = ``right`` or moments); return outputs."""
    outputs = []
    for i, m in enumerate(moments):
        t = start_s + i * DT
        r = m if right is None else right[i]
        profile.receive(EstimateSample(t, t, m, r, valid, valid))
        outputs.append(profile.step(t))
    return outputs


def enabled_profile(**overrides):
    config = AssistanceConfig(rate_hz=RATE, enabled_on_start=True, **overrides)
    return AssistanceProfile(config)


def test_state_values_match_the_message_constants():
    for state in AssistanceState:
        assert getattr(AssistanceCommand, f"STATE_{state.name}") == state.value


def test_extension_moment_gives_tension_scaled_by_gain_mass_and_moment_arm():
    profile = enabled_profile(gain=0.3, body_mass_kg=80.0, moment_arm_m=0.1, fade_in_s=0.05,
                              max_force_n=500.0)
    out = feed(profile, [0.5] * 400)[-1]  # 2 s of a constant 0.5 N·m/kg extension moment
    expected_torque = 0.3 * 80.0 * 0.5
    assert out.state == AssistanceState.ENABLED
    assert out.left_torque_nm == pytest.approx(expected_torque, rel=1e-3)
    assert out.left_force_n == pytest.approx(expected_torque / 0.1, rel=1e-3)
    assert out.right_force_n == pytest.approx(out.left_force_n)


def test_cable_pulls_only_in_its_assistance_direction():
    extension = feed(enabled_profile(fade_in_s=0.05), [-0.5] * 300)[-1]
    assert extension.left_force_n == 0.0 and extension.left_torque_nm == 0.0
    flexion = feed(enabled_profile(fade_in_s=0.05, direction="flexion"), [-0.5] * 300)[-1]
    assert flexion.left_force_n > 0.0
    assert flexion.left_torque_nm < 0.0  # flexion torque is negative by convention


def test_side_selection_leaves_the_other_cable_slack():
    out = feed(enabled_profile(fade_in_s=0.05, side="left"), [0.5] * 300)[-1]
    assert out.left_force_n > 0.0 and out.right_force_n == 0.0


def test_delay_shifts_the_force_by_the_configured_time():
    step = [0.0] * 100 + [0.4] * 300
    plain = feed(enabled_profile(fade_in_s=0.05, max_force_rate_n_per_s=20000.0), step)
    delayed = feed(enabled_profile(fade_in_s=0.05, max_force_rate_n_per_s=20000.0,
                                   delay_s=0.1), step)
    plain_f = np.array([o.left_force_n for o in plain])
    delayed_f = np.array([o.left_force_n for o in delayed])
    shift = int(0.1 * RATE)
    np.testing.assert_allclose(delayed_f[100 + shift:], plain_f[100:-shift], atol=1e-9)
    assert np.all(delayed_f[100:100 + shift] == 0.0)


def test_lowpass_matches_scipy_design_and_attenuates_above_cutoff():
    lowpass = ButterworthLowPass(6.0, 2, RATE)
    t = np.arange(0, 4.0, DT)
    x = np.sin(2 * np.pi * 1.0 * t) + np.sin(2 * np.pi * 30.0 * t)
    y = np.array([lowpass(v) for v in x])
    sos = signal.butter(2, 6.0, fs=RATE, output="sos")
    reference, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    np.testing.assert_allclose(y, reference, atol=1e-12)
    tail = y[len(t) // 2:]  # 2 s: whole periods of both tones
    amplitude = 2 * np.abs(np.fft.rfft(tail)) / tail.size
    freqs = np.fft.rfftfreq(tail.size, DT)
    assert amplitude[np.argmin(np.abs(freqs - 1.0))] > 0.95
    assert amplitude[np.argmin(np.abs(freqs - 30.0))] < 0.05  # 2nd order, 6 Hz: |H(30 Hz)| 0.04


def test_force_and_rate_limits_hold_for_wild_input():
    config = dict(fade_in_s=0.05, max_force_n=150.0, max_force_rate_n_per_s=1000.0, gain=1.0,
                  body_mass_kg=200.0, filter_cutoff_hz=40.0)
    rng = np.random.default_rng(3)
    wild = list(rng.normal(0.0, 50.0, 2000)) + [1e9, -1e9, math.inf, math.nan] * 10
    outs = feed(enabled_profile(**config), wild)
    forces = np.array([[o.left_force_n, o.right_force_n] for o in outs])
    assert np.all(np.isfinite(forces))
    assert forces.min() >= 0.0 and forces.max() <= 150.0
    assert np.abs(np.diff(forces, axis=0)).max() <= 1000.0 * DT + 1e-9


def test_state_machine_fades_smoothly_and_reverses_mid_fade():
    machine = EnableStateMachine(fade_in_s=1.0, fade_out_s=0.5)
    assert machine.state == AssistanceState.DISABLED and machine.step(DT) == 0.0
    machine.requested = True
    scales = [machine.step(DT) for _ in range(int(RATE))]
    assert machine.state == AssistanceState.ENABLED and scales[-1] == 1.0
    assert np.all(np.diff(scales) >= 0.0)
    assert np.abs(np.diff(scales)).max() < 1.6 * DT  # smoothstep peak slope 1.5 / fade_in_s
    machine.requested = False
    down = [machine.step(DT) for _ in range(50)]  # half-way through the 0.5 s fade-out
    assert machine.state == AssistanceState.FADING_OUT and 0.0 < down[-1] < 1.0
    machine.requested = True
    assert machine.step(DT) > down[-1] and machine.state == AssistanceState.FADING_IN
    machine.requested = False
    for _ in range(int(0.5 * RATE) + 1):
        machine.step(DT)
    assert machine.state == AssistanceState.DISABLED and machine.scale == 0.0


def test_disable_brings_force_to_zero_within_the_stated_time():
    profile = enabled_profile(fade_in_s=0.1)
    feed(profile, [1.0] * 200)
    profile.set_enabled(False)
    bound = profile.config.time_to_zero_after_disable_s()
    outs = feed(profile, [1.0] * int(bound * RATE + 2), start_s=1.0)
    assert outs[0].state == AssistanceState.FADING_OUT and outs[0].left_force_n > 0.0
    assert outs[-1].left_force_n == 0.0 and outs[-1].state == AssistanceState.DISABLED


@pytest.mark.parametrize("fault", ["stale", "nan", "invalid_flag"])
def test_bad_estimate_fades_force_to_zero_within_the_stated_time(fault):
    profile = enabled_profile(fade_in_s=0.1)
    feed(profile, [1.0] * 200)
    before = profile.step(200 * DT)
    assert before.left_force_n > 50.0
    bound = profile.config.time_to_zero_after_input_loss_s()
    t0 = 201 * DT
    outs = []
    for i in range(int(bound * RATE) + 1):
        t = t0 + i * DT
        if fault == "nan":
            profile.receive(EstimateSample(t, t, math.nan, math.nan, True, True))
        elif fault == "invalid_flag":
            profile.receive(EstimateSample(t, t, 1.0, 1.0, False, False))
        outs.append(profile.step(t))
    forces = np.array([o.left_force_n for o in outs])
    assert forces[-1] == 0.0 and not outs[-1].left_input_ok
    assert np.all(np.diff(forces) <= 1e-12)  # monotonic unloading, no spike


def test_assistance_resumes_with_a_fade_in_after_the_estimate_returns():
    profile = enabled_profile(fade_in_s=0.1)
    feed(profile, [1.0] * 200)
    for i in range(200):  # 1 s without estimates
        profile.step(1.0 + i * DT)
    assert profile.step(2.0).left_force_n == 0.0
    outs = feed(profile, [1.0] * 200, start_s=2.0 + DT)
    forces = [o.left_force_n for o in outs]
    assert forces[0] < 5.0 and forces[-1] > 50.0 and np.all(np.diff(forces) >= -1e-9)


def test_out_of_order_estimates_are_dropped():
    profile = enabled_profile()
    assert profile.receive(EstimateSample(1.0, 1.0, 0.5, 0.5, True, True))
    assert not profile.receive(EstimateSample(0.9, 1.01, 9.0, 9.0, True, True))
    assert profile.rejected_out_of_order == 1


@pytest.mark.parametrize("field, value", [
    ("gain", 5.0), ("body_mass_kg", -70.0), ("body_mass_kg", math.nan), ("moment_arm_m", 2.0),
    ("max_force_n", 1e6), ("delay_s", -0.1), ("filter_order", 12), ("direction", "sideways"),
    ("side", "middle"), ("filter_cutoff_hz", 95.0), ("estimate_timeout_s", math.inf),
])
def test_absurd_parameters_are_rejected_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        AssistanceConfig(**{field: value})


def test_live_update_changes_gain_and_keeps_limits():
    profile = enabled_profile(fade_in_s=0.05)
    low = feed(profile, [0.5] * 200)[-1].left_force_n
    profile.update_live(dataclasses.replace(profile.config, gain=0.4))
    high = feed(profile, [0.5] * 200, start_s=1.0)[-1].left_force_n
    assert high == pytest.approx(2 * low, rel=1e-3)
