"""Durable storage through SQLAlchemy 2 async: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by DATABASE_URL."""
