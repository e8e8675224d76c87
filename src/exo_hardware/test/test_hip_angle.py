"""Hip angles from encoders and IMUs, and the zero-posture calibration (pure)."""

import math

import pytest
from exo_hardware.hip_angle import HipAngleConfig, HipAngleTracker, NotStill

CONFIG = HipAngleConfig(calibration_s=1.0, gear_ratio=10.0, spool_radius_m=0.02,
                        hip_moment_arm_m=0.1)


def calibrate(tracker, raw=(5.0, -3.0), rate_hz=100.0):
    for i in range(int(rate_hz * 1.0) + 1):
        assert tracker.update(i / rate_hz, raw) is None
    assert tracker.calibrated
    return (int(rate_hz) + 1) / rate_hz


def test_encoder_angles_follow_the_taut_cable_geometry():
    tracker = HipAngleTracker(CONFIG)
    t = calibrate(tracker)
    # reeling the extension cable in by 10 motor rad (20 mm of cable) extends the hip 0.2 rad
    sample = tracker.update(t, (15.0, -3.0))
    assert sample.position_rad == pytest.approx((-0.2, 0.0))
    sample = tracker.update(t + 0.01, (14.5, -3.0))
    assert sample.velocity_rad_s[0] == pytest.approx(0.01 / 0.01)
    flexion = HipAngleTracker(HipAngleConfig(calibration_s=1.0, gear_ratio=10.0,
                                             spool_radius_m=0.02, direction="flexion"))
    calibrate(flexion)
    assert flexion.update(2.0, (15.0, -3.0)).position_rad[0] == pytest.approx(0.2)


def test_imu_angles_use_the_mounting_signs():
    tracker = HipAngleTracker(HipAngleConfig(source="imu", calibration_s=1.0))
    t = calibrate(tracker, raw=(0.1, -0.1))
    assert tracker.update(t, (0.5, -0.5)).position_rad == pytest.approx((0.4, 0.4))


def test_moving_wearer_is_refused_with_the_reason_then_calibrates_when_still():
    tracker = HipAngleTracker(CONFIG)
    with pytest.raises(NotStill, match=r"right hip moved 0.100 rad \(> 0.02\) during the 1 s"):
        for i in range(101):
            tracker.update(i / 100, (5.0, -3.0 + 5.0 * (i % 2 == 0) * (i > 50)))
    assert not tracker.calibrated
    calibrate(tracker)
    with pytest.raises(NotStill, match="no valid reading"):
        HipAngleTracker(CONFIG).update(0.0, (math.nan, 0.0))


def test_absurd_angle_is_not_published():
    tracker = HipAngleTracker(CONFIG)
    t = calibrate(tracker)
    assert tracker.update(t, (5.0 + 200.0, -3.0)) is None  # 4 rad of hip: a broken reading


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="left_imu_sign=0"):
        HipAngleConfig(left_imu_sign=0)
    with pytest.raises(ValueError, match="source"):
        HipAngleConfig(source="magic")


def test_shipped_parameter_file_is_valid():
    from pathlib import Path

    import yaml
    from exo_common.params import config_from_mapping

    path = Path(__file__).resolve().parents[1] / "config" / "hip_angle.yaml"
    params = yaml.safe_load(path.read_text())["hip_angle_publisher"]["ros__parameters"]
    assert config_from_mapping(HipAngleConfig, params).source == "encoders"
