"""pyproject.toml: every third-party module the package imports is a declared dependency, with a
lower bound; the license file ships; the version is written once."""
import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scaling", "search_spaces", "experiments", "reports")
#: import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow"}
#: imported only where an optional extra provides it
OPTIONAL = {"mlflow", "wandb"}
#: used from Ray's own copy (ray/thirdparty_files) when not installed: experiments.sweep.session_guard
VENDORED_BY_RAY = {"psutil"}


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def imported_modules() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES}


def declared() -> dict[str, str]:
    """{distribution name: its requirement} of the dependencies."""
    out = {}
    for req in project()["dependencies"]:
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower()
        out[name] = req
    return out


def test_every_imported_package_is_declared_with_a_lower_bound():
    deps = declared()
    missing = sorted(m for m in imported_modules() - OPTIONAL - VENDORED_BY_RAY if DISTRIBUTION.get(m, m).lower() not in deps)
    assert missing == []
    assert all(">=" in req for req in deps.values()), deps


def test_the_trackers_are_extras_and_the_test_extra_has_mlflow():
    extras = project()["optional-dependencies"]
    assert any(r.startswith("mlflow-skinny") for r in extras["test"])
    assert {"tensorboard", "mlflow", "wandb"} <= set(extras)


def test_the_license_file_is_apache_2_and_ships():
    assert project()["license"] == "Apache-2.0" and project()["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
