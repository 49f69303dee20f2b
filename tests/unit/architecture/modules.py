"""Discover every module of the three ``dure`` portions (for the architecture tests)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
ROOTS = ("policies", "client", "server")


def module_names() -> list[str]:
    names: list[str] = []
    for root in ROOTS:
        base = REPO / root / "dure"
        for package in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "__pycache__"):
            prefix = f"dure.{package.name}"
            names.append(prefix)
            for info in pkgutil.walk_packages([str(package)], prefix=prefix + "."):
                names.append(info.name)
    return sorted(set(names))


def all_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in module_names()]
