"""Alembic migrations of the contact repository's schema."""
