"""The layering of DESIGN.md holds: every import in the package points down the table.

Checked statically (every ``import`` and ``from … import`` in every module, at the top or
inside a function), so a new arrow upwards fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "adamlab"

GROUND = {"_files", "_exact", "_surfaces"}
#: layer → the adamlab layers it may import (besides itself and the ground floor)
ALLOWED = {
    "ground": set(),
    "optim": set(),
    "kernels": {"optim"},
    "problems": set(),
    "lab": {"optim", "problems", "kernels"},
    "plot": {"lab"},
    "torch": {"optim", "kernels"},
    "reproduce": {"lab", "plot", "optim", "problems", "torch"},
    "serve": {"lab", "plot", "problems", "optim"},
    "cli": {"optim", "kernels", "problems", "lab", "plot", "torch", "reproduce", "serve"},
    # adamlab/__init__.py: the rules load with the package, the rest lazily; __main__: the CLI
    "package": {"optim", "cli"},
}


def layer_of(module: str) -> str:
    if module == "adamlab":  # `import adamlab` loads the rules only (adamlab.Adam, …)
        return "optim"
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "__main__", "__version__"):
        return "package"
    head = parts[1]
    return "ground" if head in GROUND else head


def imports(path: Path) -> list[tuple[int, str]]:
    rel = path.relative_to(PKG.parent).with_suffix("")
    here = list(rel.parts)
    if here[-1] == "__init__":
        here = here[:-1]
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("adamlab")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [f"{mod}.{a.name}" for a in node.names] if not node.module else [mod]
                out += [(node.lineno, m) for m in names]
            elif node.module and node.module.startswith("adamlab"):
                out.append((node.lineno, node.module))
    return out


def test_imports_point_down_the_table():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
        mine = layer_of(module)
        for line, target in imports(path):
            theirs = layer_of(target)
            if theirs == "package":  # only the version number comes from the top
                ok = target == "adamlab.__version__" or mine == "cli"
            else:
                ok = theirs in (mine, "ground") or theirs in ALLOWED[mine]
            if not ok:
                bad.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    assert bad == [], "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: an optim module importing the lab is reported."""
    fake = PKG / "optim" / "_layer_probe.py"
    fake.write_text("from ..lab import compare\n")
    try:
        module = "adamlab.optim._layer_probe"
        found = [(layer_of(module), layer_of(t)) for _, t in imports(fake)]
        assert ("optim", "lab") in found and "lab" not in ALLOWED["optim"]
    finally:
        fake.unlink()
