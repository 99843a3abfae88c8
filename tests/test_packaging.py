"""What an install puts in site-packages: the package ``wegent`` and nothing else of ours.

The migrations stay at the repository's top level (``piccolo_migrations/``) and are installed as
``wegent.piccolo_migrations``; the top-level ``piccolo_conf.py`` (for Piccolo's command line in
the repository) is not installed. docs/operations.md has the check with a real ``pip install``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_is_listed_and_only_the_migrations_are_mapped() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = sorted(
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "wegent").rglob("__init__.py")
    )
    assert sorted(setuptools["packages"]) == sorted([*found, "wegent.piccolo_migrations"])
    assert setuptools["package-dir"] == {"wegent.piccolo_migrations": "piccolo_migrations"}
    assert "py-modules" not in setuptools


def test_installed_the_migrations_are_under_the_package(tmp_path: Path) -> None:
    """Outside the repository (so not on ``sys.path``): what the install provides."""
    probe = (
        "import importlib.util as u\n"
        "from wegent.db.piccolo_app import MIGRATIONS_FOLDER\n"
        "from wegent.db.migrate import known_migrations\n"
        "print(u.find_spec('piccolo_conf'), u.find_spec('piccolo_migrations'))\n"
        "print(MIGRATIONS_FOLDER)\n"
        "print(len(known_migrations()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    migrations = sorted((ROOT / "piccolo_migrations").glob("wegent_*.py"))
    assert result.stdout == f"None None\n{ROOT / 'piccolo_migrations'}\n{len(migrations)}\n"
