"""exo-analyze on bags with known content: every metric checked against its construction."""

import json

import numpy as np
import pytest
from exo_control.analyze import (
    AnalysisError,
    Limits,
    Recording,
    default_limits,
    fault_responses,
    fit_metrics,
    limits_from_params_files,
    load_recording,
    main,
    sample_and_hold,
    summarise,
    time_to_zero,
)
from exo_control.assistance import AssistanceConfig
from exo_control.controller import ControllerConfig
from exo_control.force_loop import ForceLoopConfig
from exo_control.recorder import GRAPH_TOPICS, BagRecording, exo_typestore

T0 = 1_700_000_000.0  # stamps on a wall-clock-like ROS clock
RATE_HZ = 100.0
STORE = exo_typestore()


def _header(t: float):
    ns = round(t * 1e9)
    return STORE.types["std_msgs/msg/Header"](
        stamp=STORE.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
        frame_id="")


class BagBuilder:
    """Write graph messages into a real MCAP bag with rosbags."""

    def __init__(self, path):
        self.bag = BagRecording(path, {t: GRAPH_TOPICS[t] for t in (
            "/joint_states", "/hip_moment/estimate", "/assistance/command",
            "/actuator/motor_command", "/actuator/state", "/controller/state")})

    def put(self, topic: str, t: float, **fields):
        msgtype = GRAPH_TOPICS[topic]
        msg = STORE.types[msgtype](header=_header(t), **fields)
        self.bag.write(topic, round(t * 1e9) + 1000, STORE.serialize_cdr(msg, msgtype))

    def close(self):
        return self.bag.close()


def _command(force_l, force_r, state=2):
    return dict(state=state, enabled=state in (1, 2), fade_scale=1.0, input_ok=True,
                left_torque_nm=0.0,
                right_torque_nm=0.0, left_force_n=force_l, right_force_n=force_r)


def _controller(ref_l, ref_r, watchdog=0, scale=1.0):
    return dict(watchdog=watchdog, enabled=scale > 0.0, output_scale=scale,
                left_force_reference_n=ref_l, right_force_reference_n=ref_r,
                left_force_error_n=0.0, right_force_error_n=0.0, loop_period_s=0.005)


def _actuator(force_l, force_r, faults=0):
    return dict(mode=1, left_cable_force_n=force_l, right_cable_force_n=force_r,
                left_force_reference_n=force_l, right_force_reference_n=force_r,
                left_motor_position_rad=0.0, right_motor_position_rad=0.0,
                left_motor_velocity_rad_s=0.0, right_motor_velocity_rad_s=0.0,
                left_fault_flags=faults, right_fault_flags=0)


@pytest.fixture(scope="module")
def known_bag(tmp_path_factory):
    """3 s of a graph run: estimate off by +0.1 N·m/kg, cable 2 N below its reference,
    one absurd desired force at 1.5 s, and a watchdog fault at 2.0 s that fades the
    reference to zero over 0.2 s while the motor command stops."""
    builder = BagBuilder(tmp_path_factory.mktemp("analyze") / "run")
    times = np.arange(300) / RATE_HZ
    for i, t in enumerate(times):
        stamp = T0 + t
        moment = np.array([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)])
        builder.put("/joint_states", stamp, name=["left_hip_joint", "right_hip_joint"],
                    position=np.array([0.1, 0.2]), velocity=np.zeros(2), effort=moment)
        builder.put("/hip_moment/estimate", stamp, left_moment_nm_per_kg=moment[0] + 0.1,
                    right_moment_nm_per_kg=moment[1] - 0.1, left_valid=i >= 100,
                    right_valid=i >= 100, model_id="m", backend="onnxruntime", ensemble_size=1,
                    inference_latency_s=0.001)
        fault = t >= 2.0
        scale = max(0.0, 1.0 - (t - 2.0) / 0.2) if fault else 1.0
        desired = 300.0 if i == 150 else 50.0
        builder.put("/assistance/command", stamp, **_command(desired, 20.0))
        reference = min(desired, 200.0) * scale, 20.0 * scale
        builder.put("/controller/state", stamp + 0.001,
                    **_controller(*reference, watchdog=1 if fault else 0, scale=scale))
        builder.put("/actuator/state", stamp + 0.002,
                    **_actuator(max(reference[0] - 2.0, 0.0), max(reference[1] - 2.0, 0.0)))
        velocity = 0.0 if t >= 2.1 else 40.0
        builder.put("/actuator/motor_command", stamp + 0.001, enabled=True,
                    left_velocity_rad_s=velocity, right_velocity_rad_s=-velocity)
    return builder.close()


def test_recording_loads_every_topic_in_stamp_order(known_bag):
    rec = load_recording(known_bag)
    assert rec.counts["/joint_states"] == 300
    assert rec.joints["t"][0] == 0.0
    np.testing.assert_allclose(np.diff(rec.joints["t"]), 0.01, atol=1e-6)
    assert rec.estimate["valid"].sum() == 400
    assert rec.controller["watchdog"][-1] == 1


def test_metrics_match_the_construction(known_bag):
    limits = Limits(max_force_n=200.0, max_force_rate_n_per_s=2000.0,
                    max_motor_velocity_rad_s=60.0, max_motor_accel_rad_s2=3000.0)
    metrics = summarise(load_recording(known_bag), limits)
    accuracy = metrics["estimate_vs_measured_moment"]
    assert accuracy["left"]["rmse"] == pytest.approx(0.1, abs=1e-9)
    assert accuracy["left"]["bias"] == pytest.approx(0.1, abs=1e-9)
    assert accuracy["right"]["bias"] == pytest.approx(-0.1, abs=1e-9)
    assert accuracy["both"]["samples"] == 400
    assert 0.9 < accuracy["both"]["r2"] < 1.0
    # The fast loop's own reference travels with the measurement (here: equal to it).
    assert metrics["force_tracking"]["actuator_reference"]["left"]["rmse_n"] == 0.0
    tracking = metrics["force_tracking"]["controller_reference"]
    # 2 N below the reference until it has faded out (~2.2 s of 3 s): 2·sqrt(2.2/3) = 1.71 N.
    assert tracking["left"]["max_abs_error_n"] == pytest.approx(2.0, abs=1e-9)
    assert tracking["left"]["rmse_n"] == pytest.approx(2.0 * np.sqrt(2.2 / 3.0), abs=0.02)
    desired = metrics["force_tracking"]["assistance_desired"]["left"]
    assert desired["max_abs_error_n"] == pytest.approx(300.0 - 198.0)  # the absurd request
    violations = metrics["limit_violations"]
    assert violations["desired_force_above_max"] == 1
    assert violations["force_reference_above_max"] == 0
    assert violations["motor_velocity_above_max"] == 0
    assert violations["measured_force_above_max"] == 0
    assert violations["total"] == 1
    felt = metrics["measured_force"]
    assert felt["left_max_n"] == pytest.approx(198.0) and felt["right_max_n"] == 18.0
    assert felt["samples_above_bound"] == 0 and felt["bound_n"] == pytest.approx(210.0)
    rates = metrics["rate_limits"]
    assert rates["desired_force_rate"]["steps_over"] == 2  # up to 300 N and back down
    # 250 N in 10 ms against 2000 N/s x (10 ms + 2 ms jitter) x 1.02
    assert rates["desired_force_rate"]["worst_ratio"] == pytest.approx(
        250 / (2000 * 0.012 * 1.02), rel=1e-4)
    assert rates["motor_accel"]["steps_over"] == 1  # one step: 40 -> 0 rad/s in 10 ms
    assert rates["steps_over"] == 3
    (episode,) = metrics["faults"]["episodes"]
    assert episode["reason"] == "controller watchdog 1"
    assert episode["onset_s"] == pytest.approx(2.001, abs=1e-6)
    assert episode["cleared_after_s"] is None and not episode["not_zeroed"]
    assert episode["force_zero_after_s"] == pytest.approx(0.2, abs=0.011)
    assert episode["motor_stopped_after_s"] == pytest.approx(0.1, abs=0.011)
    # The cable follows the reference 2 N below it: under 3 N once the reference is under 5 N.
    assert episode["tension_released_after_s"] == pytest.approx(0.2 * (1 - 5 / 50), abs=0.011)
    assert metrics["inference_latency_s"]["p99"] == pytest.approx(0.001)


def test_measured_tension_above_the_limit_is_a_violation(tmp_path):
    builder = BagBuilder(tmp_path / "over")
    for i, force in enumerate([100.0, 215.0, 205.0, 100.0]):
        builder.put("/actuator/state", T0 + i * 0.01, **_actuator(force, 50.0))
    metrics = summarise(load_recording(builder.close()), default_limits())
    assert metrics["measured_force"]["samples_above_bound"] == 1  # 215 > 200 N + 5 %
    assert metrics["measured_force"]["left_max_n"] == 215.0
    assert metrics["limit_violations"]["measured_force_above_max"] == 1
    assert metrics["limit_violations"]["total"] == 1


def test_fault_response_counts_only_while_the_fault_lasts():
    t = np.arange(400) * 0.01
    watchdog = np.zeros(400, np.int64)
    watchdog[50:55] = 1  # a 50 ms blip: clears long before a fade could finish
    watchdog[100:300] = 2  # 2 s fault, force faded to zero in 0.3 s
    watchdog[350:] = 3  # fault to the end, force never faded: a failure
    reference = np.full((400, 2), 80.0)
    reference[130:300] = 0.0
    controller = {"t": t, "watchdog": watchdog, "reference": reference}
    motor = {"t": t, "enabled": np.ones(400, bool), "velocity": np.zeros((400, 2))}
    rec = Recording(path=None, t0_ns=0, counts={}, controller=controller, motor=motor)
    blip, faded, stuck = fault_responses(rec)
    assert blip["cleared_after_s"] == pytest.approx(0.05)
    assert blip["force_zero_after_s"] is None and not blip["not_zeroed"]
    assert faded["force_zero_after_s"] == pytest.approx(0.3)
    assert faded["cleared_after_s"] == pytest.approx(2.0) and not faded["not_zeroed"]
    assert stuck["reason"] == "controller watchdog 3" and stuck["cleared_after_s"] is None
    assert stuck["force_zero_after_s"] is None and not stuck["not_zeroed"]  # lasted 0.49 s
    rec.controller = {key: np.concatenate([v, v[-1:].repeat(100, axis=0)]) if key != "t"
                      else np.arange(500) * 0.01 for key, v in controller.items()}
    assert fault_responses(rec)[-1]["not_zeroed"]  # the same fault lasting 1.49 s


def test_helpers_handle_edges():
    assert fit_metrics(np.array([1.0, np.nan]), np.array([1.0, 2.0])) is None
    assert fit_metrics(np.ones(3), np.ones(3))["r2"] is None  # no spread: R² undefined
    held = sample_and_hold(np.array([1.0, 2.0]), np.array([10.0, 20.0]),
                           np.array([0.5, 1.0, 1.5, 3.0]))
    np.testing.assert_array_equal(held, [np.nan, 10.0, 10.0, 20.0])
    assert time_to_zero(np.array([0.0, 1.0]), np.array([5.0, 5.0]), 0.0, 0.5) is None
    # A zero crossing that does not last is not "at zero"; samples after until_s do not count.
    t = np.arange(5.0)
    assert time_to_zero(t, np.array([5.0, 0.0, 5.0, 0.0, 0.0]), 0.0, 0.5) == 3.0
    assert time_to_zero(t, np.array([5.0, 0.0, 0.0, 9.0, 9.0]), 0.0, 0.5, until_s=3.0) == 1.0


def test_cli_writes_metrics_and_plots_and_keeps_them(known_bag, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert main([str(known_bag), "--output", str(out), "--max-force-n", "250"]) == 0
    printed = capsys.readouterr().out
    assert "estimate RMSE 0.100 N·m/kg" in printed and str(out) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["limits"]["max_force_n"] == 250.0
    assert metrics["limit_violations"]["desired_force_above_max"] == 1
    assert sorted(metrics["plots"]) == ["estimate_vs_measured.png", "force_tracking.png",
                                        "motor_commands.png"]
    for name in metrics["plots"]:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    before = (out / "metrics.json").read_text()
    assert main([str(known_bag), "--output", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == before
    assert main([str(known_bag), "--output", str(out), "--force"]) == 0


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "-o", str(tmp_path / "a")]) == 1
    assert "nothing: no such bag" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "-o", str(tmp_path / "b")]) == 1
    assert "cannot read bag" in capsys.readouterr().err
    assert main([str(empty), "--max-force-n", "-5"]) == 2


def test_limits_follow_the_node_configuration(tmp_path):
    limits = default_limits()
    assert limits.max_force_n == max(AssistanceConfig().max_force_n, ControllerConfig().max_force_n,
                                     ForceLoopConfig().max_force_n)
    assert limits.max_motor_accel_rad_s2 == ForceLoopConfig().max_acceleration_rad_s2
    params = tmp_path / "graph.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: false\n"
        "assistance_profile:\n  ros__parameters:\n    max_force_n: 150.0\n    gain: 0.3\n"
        "/admittance_controller:\n  ros__parameters:\n    max_force_n: 120\n"
        "simulated_actuator:\n  ros__parameters:\n    max_force_n: 120\n"
        "    max_acceleration_rad_s2: 1000.0\n    sim:\n      gear_ratio: 10.0\n")
    limits = limits_from_params_files([params])
    assert limits.max_force_n == 150.0
    assert limits.max_motor_accel_rad_s2 == 1000.0
    assert limits.max_motor_velocity_rad_s == ForceLoopConfig().max_velocity_rad_s
    params.write_text("simulated_actuator:\n  ros__parameters:\n"
                      "    max_velocity_rad_s: -5.0\n")
    with pytest.raises(AnalysisError, match="graph.yaml: max_velocity_rad_s"):
        limits_from_params_files([params])


def test_limits_from_the_package_config_files():
    import yaml
    from exo_control.graph_processes import config_files

    files = config_files()
    actuator = yaml.safe_load(next(f for f in files if f.name == "actuator.yaml")
                              .read_text())["simulated_actuator"]["ros__parameters"]
    limits = limits_from_params_files(files)
    assert limits.max_motor_velocity_rad_s == actuator["max_velocity_rad_s"]
    assert limits.max_motor_accel_rad_s2 == actuator["max_acceleration_rad_s2"]


def test_cli_reads_limits_from_a_params_file(known_bag, tmp_path):
    params = tmp_path / "graph.yaml"
    params.write_text("simulated_actuator:\n  ros__parameters:\n"
                      "    max_acceleration_rad_s2: 1000.0\n")
    out = tmp_path / "analysis"
    assert main([str(known_bag), "-o", str(out), "--params", str(params)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["limits"]["max_motor_accel_rad_s2"] == 1000.0
    assert metrics["rate_limits"]["motor_accel"]["steps_over"] == 1
