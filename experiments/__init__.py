"""experiments: datasets, the trial trainer and its regimes, Ray Tune sweeps, results, the CLI."""
