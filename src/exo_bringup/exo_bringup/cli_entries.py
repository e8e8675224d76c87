"""Console entry points of exo_bringup; light to import (see k2muse_dataset.cli_errors)."""

from k2muse_dataset.cli_errors import cli_entry

exo_demo = cli_entry("exo-demo", "exo_bringup.demo")
