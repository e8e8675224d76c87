"""The ROS layer every node shares: topic table, parameters, diagnostics, entry point."""
