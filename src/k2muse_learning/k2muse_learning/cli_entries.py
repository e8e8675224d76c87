"""Console entry points of k2muse_learning; light to import (see k2muse_dataset.cli_errors)."""

from k2muse_dataset.cli_errors import cli_entry

k2muse_baselines = cli_entry("k2muse-baselines", "k2muse_learning.baselines_cli")
k2muse_tcn = cli_entry("k2muse-tcn", "k2muse_learning.tcn_cli")
