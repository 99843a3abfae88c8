"""Kubernetes wire compatibility helpers (API.md §14)."""
