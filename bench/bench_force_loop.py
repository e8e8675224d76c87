"""Fast-loop timing: period, jitter, overruns and missed deadlines of the actuator's force loop.

Runs the real simulated_actuator node in this process (its PeriodicLoop thread: sensor read,
admittance + PD, motor write every cycle; state published at 200 Hz) against the
admittance_controller as a separate process and a 200 Hz assistance command stream, once per
requested rate, and prints the loop statistics. ``--realtime-priority 0`` measures normal
scheduling; the default is the package configuration's SCHED_FIFO priority (where permitted).

    .venv/bin/python bench/bench_force_loop.py                  # 60 s at 1 kHz, then 500 Hz
    .venv/bin/python bench/bench_force_loop.py --duration 10 --rates 1000 --realtime-priority 0
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


def _controller_process() -> subprocess.Popen:
    executable = Path(sys.executable).parent / "admittance_controller"
    command = str(executable) if executable.exists() else shutil.which("admittance_controller")
    if command is None:
        sys.exit("error: admittance_controller is not installed; run tools/setup_env.sh")
    return subprocess.Popen([command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(rate_hz: float, duration_s: float, spin_us: float, priority: int | None) -> dict:
    """Run the fast loop at ``rate_hz`` for ``duration_s``; return its loop statistics."""
    import rclpy
    from exo_common.topics import ASSISTANCE_COMMAND, publisher
    from exo_control.actuator_node import ActuatorNode
    from rclpy.executors import SingleThreadedExecutor

    from exo_msgs.msg import AssistanceCommand

    controller = _controller_process()
    overrides = [f"rate_hz:={rate_hz}"]
    if priority is not None:
        overrides.append(f"realtime_priority:={priority}")
    rclpy.init(args=["--ros-args", *[a for o in overrides for a in ("-p", o)]])
    try:
        node = ActuatorNode()
        node.loop.spin_s = spin_us * 1e-6
        command_publisher = publisher(node, ASSISTANCE_COMMAND)
        start = time.monotonic()

        def publish_command() -> None:
            force = 100.0 * max(0.0, math.sin(2 * math.pi * (time.monotonic() - start))) ** 2
            command_publisher.publish(AssistanceCommand(state=AssistanceCommand.STATE_ENABLED,
                                                input_ok=True, left_force_n=force,
                                                right_force_n=force))

        node.create_timer(0.005, publish_command)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        warmup_end = start + 3.0  # controller discovery and watchdog fade-in
        while time.monotonic() < warmup_end:
            executor.spin_once(timeout_sec=0.05)
        node.loop.stats.reset()  # measure from here
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        stats = node.loop.stats.summary()
        stats["mode_at_end"] = node.force_loop.mode.name
        node.close()
        node.destroy_node()
    finally:
        rclpy.shutdown()
        controller.terminate()
        controller.wait(10)
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
    parser.add_argument("--realtime-priority", type=int,
                        help="SCHED_FIFO priority (0: normal; default: config/actuator.yaml)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or any(r <= 0 for r in args.rates):
        parser.error("duration and rates must be positive")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    priority = "config" if args.realtime_priority is None else args.realtime_priority
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f},"
          f" duration {args.duration:g} s per rate, spin {args.spin_us:g} us,"
          f" realtime priority {priority}")
    for rate in args.rates:
        s = run_once(rate, args.duration, args.spin_us, args.realtime_priority)
        if not s.get("cycles"):
            print(f"{rate:7.0f} Hz: no cycles recorded")
            continue
        print(f"{rate:7.0f} Hz: achieved {s['achieved_rate_hz']:8.1f} Hz,"
              f" mean period {s['mean_period_s'] * 1e6:7.1f} us,"
              f" std {s['std_period_s'] * 1e6:6.1f} us,"
              f" p99 jitter {s['p99_jitter_s'] * 1e6:7.1f} us,"
              f" max jitter {s['max_jitter_s'] * 1e6:8.1f} us,"
              f" max period {s['max_period_s'] * 1e3:6.2f} ms,"
              f" overruns {s['overruns']}, missed deadlines {s['missed_deadlines']}"
              f" of {s['cycles']} cycles,"
              f" work mean {s['mean_work_s'] * 1e6:5.1f} us p99 {s['p99_work_s'] * 1e6:5.1f} us,"
              f" mode at end {s['mode_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
