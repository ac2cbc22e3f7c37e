"""Joint trajectories from chunks: timing within limits, blending and ensembling, the executing plan."""
