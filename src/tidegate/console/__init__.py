"""The console: FastAPI app factory, routes, API schemas. Nothing connects at import time."""
