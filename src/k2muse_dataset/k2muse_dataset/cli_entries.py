"""Console entry points of k2muse_dataset; light to import (see k2muse_dataset.cli_errors)."""

from .cli_errors import cli_entry

k2muse = cli_entry("k2muse", "k2muse_dataset.cli")
