#!/usr/bin/env python3
"""Time from SIGINT to exit of a working hip_moment_estimator (goal: under 1 s).

The estimator runs as its own process (the installed console entry point) on a random-weight
demo ensemble, fed joint states at 100 Hz from this script; once its estimates flow it gets
SIGINT, as ``ros2 launch`` and Ctrl-C send it, and the time until the process has exited is
measured. Each round starts a fresh node. Every exit must be status 0 without a traceback.

    .venv/bin/python bench/bench_node_stop.py --rounds 5 --backend onnxruntime pytorch
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench_inference import demo_folder, gait_angles, start_node
from k2muse_inference.backends import BACKEND_NAMES

STARTUP_BOUND_S = 120.0
RATE_HZ = 100.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh nodes per backend")
    parser.add_argument("--backend", nargs="+", default=["onnxruntime"], choices=BACKEND_NAMES)
    parser.add_argument("--goal-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def stop_time(folder: Path, backend: str, log: Path) -> float:
    """Start the node, feed it until estimates flow, SIGINT it; seconds until it exited."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    from exo_msgs.msg import HipMomentEstimate

    process = start_node(folder, backend, "newest_sample", log)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"bench_node_stop_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    estimates = []
    node.create_subscription(HipMomentEstimate, "/hip_moment/estimate", estimates.append, 100)
    publisher = node.create_publisher(JointState, "/joint_states", 100)
    try:
        deadline = time.monotonic() + STARTUP_BOUND_S
        next_due = time.monotonic()
        while len(estimates) < 50:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench_node_stop: no estimates from the node:\n{log.read_text()}")
            if time.monotonic() >= next_due:
                msg = JointState(name=["left_hip_joint", "right_hip_joint"],
                                 position=list(gait_angles(time.time())))
                msg.header.stamp = node.get_clock().now().to_msg()
                publisher.publish(msg)
                next_due += 1.0 / RATE_HZ
            executor.spin_once(timeout_sec=0.002)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=30.0)
        seconds = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    output = log.read_text()
    if status != 0 or "Traceback" in output:
        sys.exit(f"bench_node_stop: exit status {status}\n{output}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    met = True
    with tempfile.TemporaryDirectory(prefix="bench_node_stop_") as tmp:
        tmp = Path(tmp)
        folder = demo_folder(tmp, modes=3)
        for backend in args.backend:
            times = [stop_time(folder, backend, tmp / f"estimator_{backend}_{i}.log")
                     for i in range(args.rounds)]
            worst = max(times)
            met &= worst < args.goal_s
            verdict = "met" if worst < args.goal_s else "NOT met"
            print(f"{backend}: SIGINT -> exit 0 in {' '.join(f'{t:.2f}' for t in times)} s"
                  f" (max {worst:.2f} s; goal < {args.goal_s:g} s: {verdict};"
                  f" load average {os.getloadavg()[0]:.1f})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
