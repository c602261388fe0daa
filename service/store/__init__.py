"""Persistence: SQLAlchemy Core tables and async query functions. Knows nothing of HTTP."""
