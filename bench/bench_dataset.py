"""Processing throughput of k2muse_dataset versus a bare read of the same files.

Generates a synthetic release of at least 100 trials, then times, in one run and one process:
  1. the bare read: every source file read with the package's readers only (read_c3d,
     read_noraxon_mat, read_aus_channel; no processing, nothing written);
  2. for reference, the same files read with the plain libraries (ezc3d, scipy.io/h5py,
     np.loadtxt for the ELONXI text);
  3. ``process_release`` (readers + stride QC + normalisation + trial HDF5 + processed .mat +
     report) with 1 worker, taking turns with (1) for ``--rounds`` (5) rounds, then with all
     cores.
Goal: ``process_release`` with 1 worker costs at most 1.5x the bare read (1), fastest round of
each. Prints trials/s, wall and CPU seconds, and the ratios.

    .venv/bin/python bench/bench_dataset.py [--participants 4] [--duration 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import ezc3d
import h5py
import numpy as np
import scipy.io
from k2muse_dataset.aus_reader import read_aus_channel
from k2muse_dataset.c3d_reader import read_c3d
from k2muse_dataset.emg_reader import read_noraxon_mat
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release

MODES = ("LG_0", "AS_5", "AS_10", "DS_5", "DS_10")
GOAL = 1.5


def bare_read(root: Path) -> int:
    """Read every source file with the package's readers only; return the number of c3d files."""
    source = root / "SourceData"
    c3ds = sorted((source / "Vicon").rglob("*.c3d"))
    for path in c3ds:
        read_c3d(path)
    for path in sorted((source / "Noraxon").rglob("*.mat")):
        read_noraxon_mat(path)
    for path in sorted((source / "ELONXI").rglob("*.txt")):
        read_aus_channel(path)
    return len(c3ds)


def library_read(root: Path) -> int:
    """Read every source file with the plain libraries; return the number of c3d files."""
    source = root / "SourceData"
    c3ds = sorted((source / "Vicon").rglob("*.c3d"))
    for path in c3ds:
        ezc3d.c3d(str(path))
    for path in sorted((source / "Noraxon").rglob("*.mat")):
        if h5py.is_hdf5(path):
            with h5py.File(path) as f:
                f["Data"][()]
        else:
            scipy.io.loadmat(path)
    for path in sorted((source / "ELONXI").rglob("*.txt")):
        np.loadtxt(path, dtype=np.float32, skiprows=1).reshape(-1, 1000)
    return len(c3ds)


def _timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds of this process (children excluded: use 1 worker)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per trial")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating bare-read / 1-worker rounds (the fastest of each "
                             "counts: more rounds, more chances to miss other load)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="k2muse_bench_"))
    try:
        participants = [f"P{i:02d}" for i in range(1, args.participants + 1)]
        t_gen, _, root = _timed(generate_release, work / "release", participants=participants,
                                mode_keys=MODES, trials=args.trials,
                                duration_s=args.duration, processed=False)
        n = len(participants) * len(MODES) * args.trials
        print(f"generated {n} trials x {args.duration:g} s in {t_gen:.1f} s "
              f"({n / t_gen:.1f} trials/s)")
        bare_read(root)  # warm the page cache so every pass reads from memory
        t_lib, cpu_lib, _ = _timed(library_read, root)
        print(f"reference: plain-library read (ezc3d/scipy/np.loadtxt): {t_lib:.2f} s = "
              f"{n / t_lib:.1f} trials/s (CPU {cpu_lib:.2f} s)")
        # Bare read and 1-worker processing take turns; the fastest of each side is the one
        # least disturbed by other work on the machine.
        bare, proc = [], []
        for round_ in range(1, args.rounds + 1):
            t_bare, cpu_bare, count = _timed(bare_read, root)
            assert count == n
            t_proc, cpu_proc, report = _timed(process_release, root, work / "out_1", jobs=1,
                                              force=True)
            ok = sum(r["status"] == "processed" and "_Trial_" in r["trial"]
                     for r in report["rows"])
            assert ok == n, f"{ok}/{n} trials processed"
            bare.append((t_bare, cpu_bare))
            proc.append((t_proc, cpu_proc))
            print(f"round {round_}: bare read (package readers) {t_bare:.2f} s (CPU "
                  f"{cpu_bare:.2f} s); process_release jobs=1 {t_proc:.2f} s (CPU "
                  f"{cpu_proc:.2f} s); {t_proc / t_bare:.2f}x")
        (t_bare, cpu_bare), (t_proc, cpu_proc) = min(bare), min(proc)
        ratio = t_proc / t_bare
        print(f"fastest of {args.rounds}: bare read {t_bare:.2f} s = {n / t_bare:.1f} trials/s; "
              f"process_release jobs=1 {t_proc:.2f} s = {n / t_proc:.1f} trials/s; cost vs "
              f"bare read {ratio:.2f}x (goal <= {GOAL:g}x: {'met' if ratio <= GOAL else 'NOT met'})"
              f"; CPU {cpu_proc:.2f} s vs {cpu_bare:.2f} s = {cpu_proc / cpu_bare:.2f}x")
        if args.jobs > 1:
            t_par, _, _ = _timed(process_release, root, work / "out_n", jobs=args.jobs,
                                 force=True)
            print(f"process_release jobs={args.jobs}: {t_par:.2f} s = {n / t_par:.1f} trials/s; "
                  f"{t_par / t_bare:.2f}x the fastest bare read")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
