"""Console entry point of exo_hardware's node; light to import (see exo_common.node_entry)."""

from exo_common.node_entry import node_entry

hip_angle_publisher = node_entry("exo_hardware.hip_angle_node")
