#!/usr/bin/env python3
"""Start-up cost of the estimator node's code: import time and memory, per backend.

Each measurement runs in a fresh interpreter (nothing cached in the process), which imports
the estimator node module, then loads a 5-mode model folder on the requested backend the way
the node does (``load_model_spec`` + ``select_backend`` with no fallback), and reports:

- import time of ``k2muse_inference.estimator_node`` (s) and peak RSS after it (MB);
- time to load the model on the backend (s) and peak RSS after it (MB);
- whether torch or k2muse_learning was imported on the way (it must not be, for onnxruntime,
  onnxruntime_streaming or tensorrt).

Goal (issue #14): import < 1 s and < 150 MB with onnxruntime on the 2-core machine.

    .venv/bin/python bench/bench_estimator_import.py
    .venv/bin/python bench/bench_estimator_import.py --backends onnxruntime --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT_GOAL_S = 1.0
RSS_GOAL_MB = 150.0
MODES = ("LG_0", "LG_5", "LG_10", "DS_5", "US_5")

# Runs in the child interpreter: argv[1] model folder, argv[2] backend name.
CHILD = """
import json, sys, time
def peak_rss_mb():  # VmHWM: this process image's own peak (ru_maxrss keeps the parent's)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
start = time.perf_counter()
import k2muse_inference.estimator_node  # noqa: F401
imported = time.perf_counter()
import_rss = peak_rss_mb()
from k2muse_inference.backends import BackendOptions, select_backend
from k2muse_inference.model import Expectations, load_model_spec
spec = load_model_spec(sys.argv[1], Expectations())
backend = select_backend(sys.argv[2], spec.ensemble, BackendOptions(), order=[sys.argv[2]])
loaded = time.perf_counter()
print(json.dumps({
    "backend": backend.backend.name,
    "import_s": imported - start,
    "import_rss_mb": import_rss,
    "load_s": loaded - imported,
    "loaded_rss_mb": peak_rss_mb(),
    "torch": "torch" in sys.modules,
    "k2muse_learning": any(m.startswith("k2muse_learning") for m in sys.modules),
}))
"""


def measure(folder: Path, backend: str) -> dict:
    """One fresh interpreter: import, load, report."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), backend],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"backend": backend, "error": tail[0]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Write a demo model folder, then measure each backend ``--runs`` times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+",
                        default=["onnxruntime", "onnxruntime_streaming", "pytorch"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from k2muse_learning.tcn_demo import write_demo_model_folder
    from k2muse_learning.training import TrainingConfig

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_demo_model_folder(Path(tmp) / "model", mode_keys=MODES,
                                         config=TrainingConfig().tcn_config)
        print(f"{len(MODES)}-mode default-size ensemble, {args.runs} fresh interpreters each")
        for backend in args.backends:
            runs = [measure(folder, backend) for _ in range(args.runs)]
            errors = [r["error"] for r in runs if "error" in r]
            if errors:
                print(f"{backend:22s}: unavailable ({errors[0]})")
                continue
            med = {key: statistics.median(r[key] for r in runs)
                   for key in ("import_s", "import_rss_mb", "load_s", "loaded_rss_mb")}
            heavy = [name for name in ("torch", "k2muse_learning") if any(r[name] for r in runs)]
            verdict = ""
            if backend != "pytorch":
                met = med["import_s"] < IMPORT_GOAL_S and med["loaded_rss_mb"] < RSS_GOAL_MB \
                    and not heavy
                verdict = f"  goal < {IMPORT_GOAL_S:g} s, < {RSS_GOAL_MB:g} MB, no torch: " \
                          + ("met" if met else "NOT met")
            print(f"{backend:22s}: import {med['import_s']:.3f} s ({med['import_rss_mb']:.0f} MB)"
                  f", model load {med['load_s']:.3f} s, peak RSS {med['loaded_rss_mb']:.0f} MB"
                  f", imported: {', '.join(heavy) or 'neither torch nor k2muse_learning'}"
                  + verdict)


if __name__ == "__main__":
    main()
