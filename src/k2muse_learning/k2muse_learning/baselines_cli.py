"""``k2muse-baselines``: joint-angle regression and gait-phase classification sweeps.

Subcommands:
  run     run the sweep of a YAML config on a folder of trial HDF5 files, write tables and plots
  models  list the available models per task
  phases  print the gait-phase definition used for the labels
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k2muse_dataset.cli_errors import EXIT_ERROR, run_command

from .baselines import phases as phase_module
from .baselines.models import TASKS, model_names

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "baselines.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k2muse-baselines", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a baseline sweep and write results",
                         description="Run every configured model, modality and protocol.")
    run.add_argument("--data", required=True, type=Path,
                     help="processed dataset folder (holding trials/**.h5) or a trials folder")
    run.add_argument("--out", required=True, type=Path, help="output folder for tables and plots")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help=f"sweep config YAML (default: {DEFAULT_CONFIG.name})")
    run.add_argument("--seed", type=int, default=None, help="override the config's seed")
    run.add_argument("--jobs", type=int, default=1, help="processes for feature extraction")
    sub.add_parser("models", help="list available models", description="List models per task.")
    sub.add_parser("phases", help="print the gait-phase definition",
                   description="Print how gait phases are derived from events.")
    return parser


def _run(args: argparse.Namespace) -> int:
    from .baselines.dataset import find_trial_files, load_dataset
    from .baselines.outputs import write_outputs
    from .baselines.sweep import load_config, run_sweep

    config = load_config(args.config, seed=args.seed)  # ConfigError is a ValueError
    paths = find_trial_files(args.data)
    if not paths:
        raise FileNotFoundError(f"no trial files (*.h5) under {args.data}")
    trials, problems = load_dataset(
        paths, config.features, participants=config.participants, conditions=config.conditions,
        mode_keys=config.mode_keys, jobs=args.jobs, progress=True,
    )
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not trials:
        print("k2muse-baselines run: error: no usable trials match the config's data filters",
              file=sys.stderr)
        return EXIT_ERROR
    result = run_sweep(config, trials, progress=True)
    written = write_outputs(config, result, args.out)
    print(f"{len(trials)} trials, {len(result.rows)} result rows; wrote {len(written)} files "
          f"to {args.out}")
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = _parser().parse_args(argv)
    if args.command == "models":
        for task in TASKS:
            print(f"{task}: {', '.join(model_names(task))}")
        return 0
    if args.command == "phases":
        print(phase_module.__doc__)
        return 0
    return run_command(f"k2muse-baselines {args.command}", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
