"""Persistence: SQLAlchemy tables, repositories and Alembic migrations (SQLite | PostgreSQL)."""
