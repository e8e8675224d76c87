"""System bringup: the launch file users start and the system's parameter files (no nodes)."""
