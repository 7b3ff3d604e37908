"""The core never imports upward: ``traffic`` knows neither ``collector`` nor ``web`` nor the
command that wires them (``cli``), not even by name through ``importlib``; ``collector`` and
``web`` never import each other."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER = {"traffic": {"collector", "web", "cli"}, "collector": {"web", "cli"},
         "web": {"collector", "cli"}}


def imported_names(path: Path) -> set[str]:
    """Modules a file imports, and every dotted string naming a module of ours (what
    ``importlib`` would load; a bare "collector" is also the name of a config section)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and "." in node.value and node.value.replace(".", "").isidentifier()):
            names.add(node.value)
    return names


@pytest.mark.parametrize("package", sorted(UPPER))
def test_no_package_imports_upward(package: str) -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for name in imported_names(path)
             if name.split(".")[0] in UPPER[package]]
    assert wrong == []


def test_the_core_loads_without_the_layers_above() -> None:
    """Importing every core module leaves collector, web and cli unloaded."""
    modules = [f"traffic.{path.stem}" for path in (ROOT / "traffic").glob("*.py")
               if path.stem != "__init__"] + ["traffic.store.sqlite"]
    script = (f"import sys\nfor name in {modules!r}: __import__(name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('collector', 'web', 'cli')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


FILE_KEEPERS = {"config.py", "toml_files.py", "files.py", "runtime.py", "log.py"}
"""The core modules that touch files: the config file and its cache, the store's runtime
folder, and the log. The rest reach what the collector publishes only through the store."""
FILE_CALLS = {"open", "read_document", "write_atomically", "replace_file", "listdir",
              "unlink", "stat", "scandir"}


@pytest.mark.parametrize("path", sorted(
    path for path in (ROOT / "traffic").glob("*.py") if path.name not in FILE_KEEPERS),
    ids=lambda path: path.name)
def test_the_core_reads_what_the_collector_publishes_only_through_the_store(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    calls = {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
             for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name | ast.Attribute)}
    assert calls & FILE_CALLS == set()
    assert "traffic.runtime" not in imported_names(path)
