"""Readers, processing, plots and rosbag2 export for the K2MUSE lower-limb walking dataset."""
