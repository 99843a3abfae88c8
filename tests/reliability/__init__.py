"""Fault tests: a real PostgreSQL and a real ``wegent serve`` process, controlled separately."""
