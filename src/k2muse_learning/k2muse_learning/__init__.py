"""K2MUSE learning: regression and gait-phase baselines, TCN hip-moment estimator, export."""
