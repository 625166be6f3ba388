"""Persisted operations (issue 12, §3): Automatic Persisted Queries for mobile clients, and
per-partner allow-lists of registered (trusted) documents.

- `names`: what a client name and a document hash look like;
- `apq`: where APQ documents live (Redis when configured, else a bounded in-process LRU);
- `allow_list`: each client's mode and registered documents, cached per process;
- `resolve`: the ASGI middleware that turns a request's hashes into documents, per
  operation, before rate limits and GraphQL see it;
- `report` and `cli`: `sisada operations`, which checks a document against the limits and
  the policy before registering it.
"""
