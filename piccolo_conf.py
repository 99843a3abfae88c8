"""Piccolo's configuration for Piccolo's own command line, run from the repository (for
example ``piccolo migrations new wegent --auto``). The configuration itself is
``wegent/db/piccolo_conf.py``, installed with the package; this file is not installed.
"""

from wegent.db.piccolo_conf import APP_REGISTRY, __getattr__

__all__ = ["APP_REGISTRY", "__getattr__"]
