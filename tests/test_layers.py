"""The package's layers import downwards only: the engine never imports the API facade, the top
package, the GUI or the trainer; nothing below the facade imports `emolive` or `emolive.api`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# folder -> the emolive modules its code may not import (prefixes)
FORBIDDEN = {
    "engine": ("emolive.api", "emolive.gui", "emolive.trainer"),
    "plugins": ("emolive.api", "emolive.gui"),
    "gui": ("emolive.api", "emolive.trainer"),
    "trainer": ("emolive.api", "emolive.gui"),
}


def imported_modules(path: Path) -> list[str]:
    """Every module an `import` or `from … import` in the file names (relative imports are not used here)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_runs_back_up_the_layers(folder):
    wrong = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name == "emolive" or name.startswith(FORBIDDEN[folder]):
                wrong.append(f"{path.relative_to(REPO)}: {name}")
    assert not wrong, wrong


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import emolive\nfrom emolive.api import analyze\n")
    assert imported_modules(module) == ["emolive", "emolive.api", "emolive.api.analyze"]
