"""Data access: SQLAlchemy models and queries, per-request DataLoaders.

Never imports Strawberry; the schema layer calls into this package.
"""
