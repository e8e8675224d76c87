"""Console entry point of the estimator node; light to import (see exo_common.node_entry)."""

from exo_common.node_entry import node_entry

hip_moment_estimator = node_entry("k2muse_inference.estimator_node")
