"""The web layer (FastAPI): schemas, routes, error mapping, metrics."""
