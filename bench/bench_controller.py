"""Controller loop timing: period mean, p99 jitter and overruns of admittance_controller.

Runs the real controller node in this process (its PeriodicLoop thread, publishing a motor
command every cycle) against the simulated_actuator as a separate process and a 200 Hz
assistance command stream, once per requested rate, and prints the loop statistics.

    .venv/bin/python bench/bench_controller.py                  # 60 s at 1 kHz, then 500 Hz
    .venv/bin/python bench/bench_controller.py --duration 10 --rates 1000
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _actuator_process(rate_hz: float) -> subprocess.Popen:
    executable = Path(sys.executable).parent / "simulated_actuator"
    command = str(executable) if executable.exists() else shutil.which("simulated_actuator")
    if command is None:
        sys.exit("error: simulated_actuator is not installed; run tools/setup_env.sh")
    return subprocess.Popen([command, "--ros-args", "-p", f"rate_hz:={rate_hz}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(rate_hz: float, duration_s: float, spin_us: float) -> dict:
    """Run the controller at ``rate_hz`` for ``duration_s``; return its loop statistics."""
    import rclpy
    from exo_control.common_node import TOPIC_QOS
    from exo_control.controller_node import AdmittanceControllerNode
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from exo_msgs.msg import AssistanceCommand

    actuator = _actuator_process(rate_hz)
    rclpy.init()
    try:
        node = AdmittanceControllerNode(parameter_overrides=[
            Parameter("rate_hz", value=float(rate_hz))])
        node.loop.spin_s = spin_us * 1e-6
        publisher = node.create_publisher(AssistanceCommand, "/assistance/command",
                                          TOPIC_QOS["/assistance/command"])
        start = time.monotonic()

        def publish_command() -> None:
            force = 100.0 * max(0.0, math.sin(2 * math.pi * (time.monotonic() - start))) ** 2
            publisher.publish(AssistanceCommand(left_force_n=force, right_force_n=force))

        node.create_timer(0.005, publish_command)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        warmup_end = start + 3.0  # actuator discovery and watchdog fade-in
        while time.monotonic() < warmup_end:
            executor.spin_once(timeout_sec=0.05)
        node.loop.stats.reset()  # measure from here
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        stats = node.loop.stats.summary()
        stats["watchdog_at_end"] = node.watchdog_name()
        node.close()
        node.destroy_node()
    finally:
        rclpy.shutdown()
        actuator.terminate()
        actuator.wait(10)
    return stats


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run each rate, print one block of figures per rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds measured per rate (default 60)")
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 500.0],
                        help="loop rates in Hz (default 1000 500)")
    parser.add_argument("--spin-us", type=float, default=0.0,
                        help="busy-wait this many microseconds before each deadline")
    args = parser.parse_args(argv)
    if args.duration <= 0 or any(r <= 0 for r in args.rates):
        parser.error("duration and rates must be positive")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f},"
          f" duration {args.duration:g} s per rate, spin {args.spin_us:g} us")
    for rate in args.rates:
        s = run_once(rate, args.duration, args.spin_us)
        if not s.get("cycles"):
            print(f"{rate:7.0f} Hz: no cycles recorded")
            continue
        print(f"{rate:7.0f} Hz: achieved {s['achieved_rate_hz']:8.1f} Hz,"
              f" mean period {s['mean_period_s'] * 1e6:7.1f} us,"
              f" std {s['std_period_s'] * 1e6:6.1f} us,"
              f" p99 jitter {s['p99_jitter_s'] * 1e6:7.1f} us,"
              f" max jitter {s['max_jitter_s'] * 1e6:8.1f} us,"
              f" overruns {s['overruns']} of {s['cycles']} cycles,"
              f" work mean {s['mean_work_s'] * 1e6:5.1f} us p99 {s['p99_work_s'] * 1e6:5.1f} us,"
              f" watchdog at end {s['watchdog_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
