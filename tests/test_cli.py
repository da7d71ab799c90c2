"""experiments/cli/__init__.py: the archscale command, its subcommands, and a help that imports no torch."""
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from experiments.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "pandas", "fvcore", "matplotlib")

PROBE = """
import sys
from experiments.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("heavy:", ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["count", "--help"], ["space", "--help"], ["train", "--help"],
                                   ["sweep", "--help"], ["report", "--help"], ["status", "--help"],
                                   ["list", "--help"]])
def test_help_imports_no_torch_ray_or_pandas(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: archscale" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "heavy:"


def test_every_command_has_its_own_module():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == ["count", "space", "train", "sweep", "status", "costs", "report", "suggest", "list"]
    # list_.py: a module named list would shadow the builtin
    assert [c.__name__.rsplit(".", 1)[1].rstrip("_") for c in COMMANDS] == list(sub.choices)


def test_version_is_the_packages_one_version_string(capsys):
    from scaling import __version__
    from scaling.version import __version__ as written

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"archscale {written}"
    assert __version__ == written and written.count(".") == 2
    dynamic = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in dynamic["project"]["dynamic"] and "version" not in dynamic["project"]
    assert dynamic["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scaling.version.__version__"}


def test_console_script_points_at_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, name = scripts["archscale"].split(":")
    assert module == "experiments.cli" and name == "main"


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2 and "COMMAND" in capsys.readouterr().err
