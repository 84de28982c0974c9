"""The backend's layers depend one way (README, Layout): each folder imports only the ones below it,
and the package vendored into the editors (`protocol`) imports nothing else of the backend."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "backend" / "anycost"
# a layer -> the parts of `anycost` it may import (besides itself), bottom to top: each may use only
# layers listed before it. `protocol` is what the editors vendor, so it stands on nothing.
ALLOWED = {
    "protocol": set(),
    "core": {"protocol"},
    "models": {"core"},
    "inference": {"core", "models"},
    "formats": {"core", "models", "inference"},
    "editing": {"core", "models", "inference", "formats"},
    "bench": {"protocol", "core", "models", "inference", "formats", "editing"},
    "install": {"protocol", "core"},
    "service": {"protocol", "core", "models", "inference", "formats", "editing"},
    "cli": {"protocol", "core", "models", "inference", "formats", "editing", "bench", "install", "service"},
}


def anycost_imports(path: Path, root: Path = ROOT) -> set[str]:
    """The first component under `anycost` (the package at `root`) of everything the module imports from it."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(root).parts[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:                                   # relative: resolve against the module's package
                base = list(package[:len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:                                # `from .. import x`: x itself is the part
                    out.update(a.name for a in node.names)
                    continue
                out.add(parts[0])
            elif node.module and node.module.split(".")[0] == "anycost":
                parts = node.module.split(".")[1:]
                out.update([parts[0]] if parts else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("anycost."))
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_lies_below_it(layer):
    files = sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else [ROOT / f"{layer}.py"]
    assert files
    for f in files:
        used = anycost_imports(f) - {layer, "__version__"}
        assert used <= ALLOWED[layer], f"{f.relative_to(ROOT)} imports {sorted(used - ALLOWED[layer])}"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    probe = tmp_path / "models" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("from ..service import engine\nfrom anycost.cli import main\nfrom . import ops\n"
                     "import anycost.formats.registry\nfrom .. import editing\n")
    assert anycost_imports(probe, tmp_path) == {"service", "cli", "models", "formats", "editing"}


def test_every_part_of_the_backend_has_a_layer():
    parts = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__", "__main__"}
    assert parts | modules == set(ALLOWED), "a new top-level part needs its place in ALLOWED (and the README's Layout)"
