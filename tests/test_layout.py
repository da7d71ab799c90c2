"""The layout's rules, read off the source: rooms import one way, and only experiments/sweep imports Ray.

Every import is counted, at module level and inside functions (a lazy import is still an arrow).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scaling", "search_spaces", "reports", "experiments")
#: What each room of experiments/ may import of experiments/ (its own room included).
ROOMS = {
    "data": {"data"},
    "train": {"train", "data", "results"},
    "results": {"results"},
    "sweep": {"sweep", "train", "data", "results"},
    "cli": {"cli", "sweep", "train", "data", "results"},
}
#: What each lower layer may import of the four packages.
LAYERS = {"scaling": {"scaling"}, "search_spaces": {"search_spaces", "scaling"},
          "reports": {"reports", "search_spaces", "scaling"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module ``source`` (the text of ``module``) imports."""
    names = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] + ([node.module] if node.module else [])
                base = ".".join(base)
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names
                         if (ROOT / base.replace(".", "/") / f"{a.name}.py").is_file()
                         or (ROOT / base.replace(".", "/") / a.name / "__init__.py").is_file())
    return names


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Each import of ``module`` that breaks the layout's rules, in words."""
    found = []
    top = module.split(".")[0]
    room = module.split(".")[1] if top == "experiments" and module.count(".") >= 1 else None
    for name in sorted(imports_of(source, module, is_package)):
        first = name.split(".")[0]
        if first == "ray" and not module.startswith("experiments.sweep"):
            found.append(f"{module} imports {name}: Ray belongs in experiments/sweep")
        if first not in PACKAGES:
            continue
        if top in LAYERS and first not in LAYERS[top]:
            found.append(f"{module} imports {name}: {top}/ sits below {first}/")
        if top == "experiments" and first == "experiments" and name.count("."):
            target = name.split(".")[1]
            if target in ROOMS and room in ROOMS and target not in ROOMS[room]:
                found.append(f"{module} imports {name}: experiments/{room} may import "
                             f"{', '.join(sorted(ROOMS[room]))} of experiments/, not {target}")
    return found


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_module_keeps_to_its_room():
    found = [v for p in source_files() for v in violations(p.read_text(), module_name(p), p.name == "__init__.py")]
    assert not found, "\n".join(found)


def test_every_experiments_module_lives_in_a_room():
    loose = [p.name for p in (ROOT / "experiments").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules outside the rooms of experiments/: {loose}"
    assert {p.name for p in (ROOT / "experiments").iterdir() if (p / "__init__.py").is_file()} == set(ROOMS)


def test_each_room_says_what_it_owns_and_may_import():
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((ROOT / "experiments" / room / "__init__.py").read_text())) or ""
        assert "Owns" in doc and ("May import" in doc or "may import" in doc.lower()), room


@pytest.mark.parametrize("module, source, problem", [
    ("experiments.train.trial", "def f():\n    import ray\n", "Ray belongs in experiments/sweep"),
    ("experiments.data.datasets", "from ..train.loop import evaluate\n", "may import data of experiments/"),
    ("experiments.results.status", "from experiments.sweep.run import run_sweep\n", "not sweep"),
    ("reports.report", "from experiments.results import load_results\n", "reports/ sits below experiments/"),
    ("scaling.spec", "import search_spaces\n", "scaling/ sits below search_spaces/"),
])
def test_a_planted_wrong_import_is_caught(module, source, problem):
    assert any(problem in v for v in violations(source, module))


def test_the_checker_passes_imports_that_keep_to_the_rooms():
    assert violations("from ..data.datasets import load_dataset\nimport torch\n", "experiments.train.trial") == []
    assert violations("import ray\nfrom ..train.trial import train_trial\n", "experiments.sweep.run") == []
