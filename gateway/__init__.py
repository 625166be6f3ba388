"""The ASGI app: settings, auth, request context, limits, lifespan. Wires the parts together."""
