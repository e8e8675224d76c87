#!/usr/bin/env python3
"""End-to-end latency of hip_moment_estimator: JointState published -> estimate received.

Two processes over real DDS: this script publishes stamped joint states at a fixed rate from
a thread and receives the estimates on its executor; the node runs as its own process (the
installed console entry point). Latency is the receive time minus the joint state's stamp
(the stamp is the publish time; the estimate carries it back). Drops are the estimates
expected (one per message once the window is full) that never arrived.

    .venv/bin/python bench/bench_inference.py --duration 60 --rate 200 --backend onnxruntime
    .venv/bin/python bench/bench_inference.py --duration 30 --rate 200 --modes 5 --grid-stamps \
        --backend onnxruntime onnxruntime_streaming     # the node-level effect of streaming

    .venv/bin/python bench/bench_inference.py --duration 30 --rate 200 --modes 5 \
        --window-end model_grid --backend onnxruntime onnxruntime_streaming  # jittered stamps

Several --backend values run one after another in the same invocation, each with a fresh node.
--grid-stamps stamps message i exactly ``i / rate`` after the first (as a clocked encoder
driver or trial_replay stamps them) and publishes it when due, so latency still counts any
publishing lateness; the windows then continue each other and the streaming backend steps
one sample per message. With the default (stamp = publish time, jittery) every window lies on
a grid of its own and the streaming backend primes from the whole window each time, unless
``--window-end model_grid`` sets the node's window_end: then windows end on the model grid,
one estimate per model period stamped with that instant, each a single step; its latency is
counted from the first message at or after the instant (the one that completed the window).

Without --model-folder a random-weight demo ensemble (k2muse_learning.tcn_demo) is written
to a temporary folder; its size and speed match a trained one with the same architecture.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from k2muse_inference.backends import BACKEND_NAMES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing")
    parser.add_argument("--rate", type=float, default=200.0, help="joint-state rate, Hz")
    parser.add_argument("--backend", nargs="+", default=["onnxruntime"],
                        choices=["auto", *BACKEND_NAMES])
    parser.add_argument("--grid-stamps", action="store_true",
                        help="stamp messages on an exact 1/rate grid instead of publish time")
    parser.add_argument("--window-end", choices=["newest_sample", "model_grid"],
                        default="newest_sample", help="the node's window_end parameter")
    parser.add_argument("--model-folder", type=Path,
                        help="model folder to run (default: a demo ensemble in a temp folder)")
    parser.add_argument("--modes", type=int, default=3,
                        help="per-mode models in the demo ensemble (ignored with --model-folder)")
    parser.add_argument("--goal-p99-ms", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not (args.duration > 0 and args.rate > 0 and args.modes >= 1):
        parser.error("--duration, --rate and --modes must be positive")
    return args


def demo_folder(root: Path, modes: int) -> Path:
    """A random-weight ensemble written by k2muse_learning (same format as a trained one)."""
    from k2muse_learning.tcn_demo import write_demo_model_folder

    keys = ["LG_0", "AS_5", "AS_10", "DS_5", "DS_10", "AS_15", "DS_15"][:modes]
    keys += [f"LG_{i}" for i in range(1, modes - len(keys) + 1)]
    return write_demo_model_folder(root / "model", mode_keys=keys)


def executable(name: str) -> str:
    """Path of a console entry point installed beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"bench_inference: {name} is not installed (run tools/setup_env.sh)")
    return found


def start_node(folder: Path, backend: str, window_end: str, log: Path) -> subprocess.Popen:
    """The estimator as its own process, its output kept in ``log``."""
    args = [executable("hip_moment_estimator"), "--ros-args", "-p", f"model_folder:={folder}",
            "-p", f"backend:={backend}", "-p", f"window_end:={window_end}"]
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True)


def gait_angles(t_s: float) -> tuple[float, float]:
    """Plausible hip flexion angles (rad) at time t, the legs half a stride apart."""
    phase = 2 * math.pi * 0.9 * t_s
    return 0.15 + 0.4 * math.sin(phase), 0.15 + 0.4 * math.sin(phase + math.pi)


def run(args: argparse.Namespace, backend: str, folder: Path, log: Path) -> dict:
    """Publish for ``args.duration`` s, collect the estimates and return the figures."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from tqdm import tqdm

    from exo_msgs.msg import HipMomentEstimate

    node_process = start_node(folder, backend, args.window_end, log)
    rclpy.init()
    node = rclpy.create_node(f"bench_inference_{os.getpid()}")
    received: list[tuple[int, int, float]] = []  # (stamp ns, receive ns, node inference s)

    def on_estimate(msg: HipMomentEstimate) -> None:
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        received.append((stamp, now, msg.inference_latency_s))

    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(JointState, "/joint_states", reliable)
    node.create_subscription(HipMomentEstimate, "/hip_moment/estimate", on_estimate,
                             QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 60.0
        while publisher.get_subscription_count() == 0 or \
                node.count_publishers("/hip_moment/estimate") == 0:
            if node_process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench_inference: the node did not come up:\n{log.read_text()}")
            executor.spin_once(timeout_sec=0.05)

        count = int(round(args.duration * args.rate))
        stop = threading.Event()
        published_stamps: list[int] = []

        def publish_all() -> None:
            start = time.perf_counter()
            grid_start_ns = time.time_ns()
            with tqdm(total=count, unit="msg", desc="publishing", leave=False) as bar:
                for i in range(count):
                    due = start + i / args.rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    # Angles follow the stamp, as an encoder's would when the sender is late.
                    stamp = grid_start_ns + round(i * 1e9 / args.rate) if args.grid_stamps \
                        else time.time_ns()
                    msg = JointState(name=["left_hip_joint", "right_hip_joint"],
                                     position=list(gait_angles(stamp / 1e9)))
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp,
                                                                           1_000_000_000)
                    publisher.publish(msg)
                    published_stamps.append(stamp)
                    if i % 200 == 0:
                        bar.update(min(200, count - bar.n))
            stop.set()

        thread = threading.Thread(target=publish_all, daemon=True)
        thread.start()
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.01)
        drain_until = time.monotonic() + 2.0
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.01)
        thread.join()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        node_process.send_signal(2)
        try:
            node_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_process.kill()

    # A window is full once the stream spans window_length model periods (with real, jittery
    # stamps that is not a fixed message count); the messages before that expect no estimate.
    from k2muse_learning.artifacts import load_manifest

    manifest = load_manifest(folder)
    period_ns = 1e9 / manifest["sample_rate_hz"]
    span_ns = manifest["window_length"] * period_ns
    first = published_stamps[0] if published_stamps else 0
    if args.window_end == "model_grid":  # one estimate per instant, from the message past it
        completed_by: dict[int, int] = {}
        for stamp in published_stamps:
            completed_by.setdefault(stamp - stamp % int(period_ns), stamp)
        received = [(stamp, recv - (completed_by.get(stamp, stamp) - stamp), inference)
                    for stamp, recv, inference in received]
        expected = {instant for instant in completed_by if instant - first >= span_ns}
    else:
        expected = {stamp for stamp in published_stamps if stamp - first >= span_ns}
    got = {stamp: (recv, inference) for stamp, recv, inference in received}
    latencies_ms = np.array([(recv - stamp) / 1e6 for stamp, (recv, _) in got.items()
                             if stamp in expected])
    inference_ms = np.array([inference * 1e3 for stamp, (_, inference) in got.items()
                             if stamp in expected])
    missing = expected - set(got)
    drops = len(missing)
    # Where in the stream estimates went missing (window-fill edge, mid-stream or the end).
    dropped_at = sorted(i for i, stamp in enumerate(published_stamps) if stamp in missing)
    figures = {
        "backend": backend, "grid_stamps": args.grid_stamps, "window_end": args.window_end,
        "rate_hz": args.rate,
        "duration_s": args.duration,
        "ensemble_size": len(manifest["models"]), "window_length": manifest["window_length"],
        "published": len(published_stamps), "expected_estimates": len(expected),
        "received_estimates": len(latencies_ms), "drops": drops,
        "dropped_at_messages": " ".join(map(str, dropped_at[:10])) or "-",
    }
    if len(latencies_ms):
        figures.update({
            "e2e_p50_ms": float(np.percentile(latencies_ms, 50)),
            "e2e_p99_ms": float(np.percentile(latencies_ms, 99)),
            "e2e_max_ms": float(latencies_ms.max()),
            "inference_p50_ms": float(np.percentile(inference_ms, 50)),
            "inference_p99_ms": float(np.percentile(inference_ms, 99)),
        })
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    # A domain of its own, on this host only, so other ROS traffic neither joins nor disturbs.
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        tmp = Path(tmp)
        folder = args.model_folder or demo_folder(tmp, args.modes)
        for backend in args.backend:
            figures = run(args, backend, folder, tmp / f"hip_moment_estimator_{backend}.log")
            runs.append(figures)
            for key, value in figures.items():
                print(f"{key:>20}: {value:.3f}" if isinstance(value, float)
                      else f"{key:>20}: {value}")
            p99 = figures.get("e2e_p99_ms", math.inf)
            verdict = "met" if p99 < args.goal_p99_ms and figures["drops"] == 0 else "NOT met"
            print(f"goal (p99 < {args.goal_p99_ms:g} ms, zero drops): {verdict}\n")
    if len(runs) > 1:
        print("backend side by side: inference p50 / p99 ms, e2e p50 / p99 ms, drops")
        for figures in runs:
            print(f"  {figures['backend']:>22}: {figures.get('inference_p50_ms', math.nan):.3f} / "
                  f"{figures.get('inference_p99_ms', math.nan):.3f}, "
                  f"{figures.get('e2e_p50_ms', math.nan):.3f} / "
                  f"{figures.get('e2e_p99_ms', math.nan):.3f}, {figures['drops']}")
    if args.json:
        args.json.write_text(json.dumps(runs if len(runs) > 1 else runs[0], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
