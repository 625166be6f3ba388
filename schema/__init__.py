"""Strawberry types, one module per domain, composed into one federated schema in `root.py`."""
