"""Benchmarks: the bridge side by side with the real upstream peers, reported as ratios in one run."""
