"""Console entry points of exo_control; light to import (see k2muse_dataset.cli_errors)."""

from k2muse_dataset.cli_errors import cli_entry

exo_analyze = cli_entry("exo-analyze", "exo_control.analyze")
