"""Benchmarks: the privacy-enforced gateway against its ceiling, the naive approach and a floor."""
