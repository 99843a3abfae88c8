"""The schema history of the ``wegent`` Piccolo app."""
