"""The HTTP API (`ccs serve`): FastAPI routes under /api/v1, authentication, authorization,
the access log. `create_app(settings)` in app.py builds it."""
