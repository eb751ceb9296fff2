"""API bodies: separate Create / Update / Public models per resource (pydantic, strict fields)."""
