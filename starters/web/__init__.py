"""The web app: server-rendered pages on the same service as the HTTP API (routes.py)."""
