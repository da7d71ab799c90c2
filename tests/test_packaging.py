"""pyproject.toml: every third-party module the package imports is a declared dependency, with a
lower bound; the license file ships; the version is written once."""
import ast
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scaling", "search_spaces", "experiments", "reports")
#: import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "pynvml": "nvidia-ml-py"}
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


def test_the_trackers_are_extras_and_the_test_extra_has_mlflow_and_tensorboard():
    extras = project()["optional-dependencies"]
    assert {"tensorboard", "mlflow", "wandb"} <= set(extras)
    assert any(r.startswith("archscale[") and "mlflow" in r and "tensorboard" in r for r in extras["test"])
    # mlflow-skinny opens the default store, a SQLite database, only with SQLAlchemy and alembic
    names = {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in extras["mlflow"]}
    assert {"mlflow-skinny", "sqlalchemy", "alembic"} <= names


def test_the_license_file_is_apache_2_and_ships():
    assert project()["license"] == "Apache-2.0" and project()["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_that_ships_files_is_a_listed_package_and_its_files_are_package_data():
    """setuptools warns "Package 'reports.data' is absent from the packages configuration" for an
    importable folder it is not told of; each folder of the packages is listed, and each data
    file matches its package's package-data globs."""
    import fnmatch

    config = setuptools_config()
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in files}
    assert folders == set(config["packages"])
    data = config["package-data"]
    for p in files:
        if p.suffix != ".py":
            globs = data.get(".".join(p.parent.relative_to(ROOT).parts), [])
            assert any(fnmatch.fnmatch(p.name, g) for g in globs), p


def project_copy(tmp_path) -> Path:
    """What a build reads: pyproject.toml, README.md, LICENSE and the packages, copied."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_holds_the_data_files(tmp_path):
    import subprocess

    src = project_copy(tmp_path)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w",
                            str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    log = build.stdout + build.stderr
    assert not re.search(r"[A-Za-z]+Warning\b", log), log[-3000:]  # BuildBackendWarning, SetuptoolsDeprecationWarning
    import zipfile

    [wheel] = (tmp_path / "wheel").glob("archscale-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder, suffix in (("experiments/configs", ".yaml"), ("reports/data", ".csv"), ("search_spaces/presets",
                                                                                           ".yaml")):
        shipped = sorted(n for n in names if n.startswith(folder + "/"))
        assert shipped == sorted(f"{folder}/{p.name}" for p in (ROOT / folder).glob("*" + suffix)), folder


@pytest.mark.slow
def test_the_editable_install_builds_without_a_notice_and_imports_from_the_project(tmp_path):
    """`make install` is `pip install -e`: setuptools' PEP 660 hook, run as pip runs it, prints no
    warning or notice (a flat layout without package-dir gets a 10-line "Editable installation"
    InformationOnly), and the .pth it writes makes the project's own folder importable."""
    import subprocess
    import zipfile

    src = project_copy(tmp_path)
    build = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                            "print(b.build_editable(sys.argv[1]))", str(tmp_path / "wheel")],
                           cwd=src, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    log = build.stdout + build.stderr
    assert not re.search(r"[A-Za-z]+Warning\b|InformationOnly", log), log[-3000:]
    wheel = tmp_path / "wheel" / build.stdout.split()[-1]
    [pth] = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".pth")]
    assert zipfile.ZipFile(wheel).read(pth).decode().split() == [str(src.resolve())]
