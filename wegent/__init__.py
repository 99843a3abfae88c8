"""Wegent: a Kubernetes-style resource server for AI-agent platforms."""

__version__ = "0.1.0"
