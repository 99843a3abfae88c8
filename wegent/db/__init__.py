"""Database: the embedded PostgreSQL default, the engine and pool, tables and migrations."""
