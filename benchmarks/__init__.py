"""Performance measurements, reported as ratios measured in one process (`make bench`)."""
