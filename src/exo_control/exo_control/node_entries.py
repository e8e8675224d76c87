"""Console entry points of exo_control's nodes; light to import (see exo_common.node_entry)."""

from exo_common.node_entry import node_entry

assistance_profile = node_entry("exo_control.assistance_node")
admittance_controller = node_entry("exo_control.controller_node")
simulated_actuator = node_entry("exo_control.actuator_node")
trial_replay = node_entry("exo_control.replay_node")
topic_recorder = node_entry("exo_control.recorder_node")
