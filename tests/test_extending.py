"""Adding an ArchSpec field is one edit: it reaches the CLI flags, the space axes and the report
axes with nothing else changed (README, "Extending").

The test copies the four packages, adds one documented field to ``scaling/spec.py``'s ArchSpec in
the copy, and checks in a fresh process that the field is a command-line flag, an axis a space can
vary (and names its configs by), and an axis of the report's tables.
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scaling", "search_spaces", "experiments", "reports")

CHECK = r'''
import pandas as pd

from experiments.cli import build_parser, specargs
from reports.design_space import axis_effects
from reports.tables import ARCH_FIELDS
from search_spaces import parse_space

# the command line
parser = build_parser()
args = parser.parse_args(["count", "resnet18", "--new-knob", "3"])
assert specargs.spec_overrides(args) == {"new_knob": 3}, specargs.spec_overrides(args)
count_help = [a for a in parser._subparsers._group_actions[0].choices["count"]._actions
              if "--new-knob" in a.option_strings]
assert count_help, "no --new-knob flag"

# a space axis, validated like any field and shown in the config names
expansion = parse_space({"base": "resnet18", "axes": {"new_knob": [1, 2], "resolution": [32, 64]}}).expand()
assert sorted({c.spec.new_knob for c in expansion.configs}) == [1, 2]
assert all(f"new_knob{c.spec.new_knob}" in c.name for c in expansion.configs), [c.name for c in expansion.configs]
try:
    parse_space({"base": "resnet18", "axes": {"new_knob": ["x"]}}).expand()
except Exception as e:  # an invalid value drops every config: the space is empty, and says why
    assert "new_knob" in str(e), e
else:
    raise AssertionError("a non-integer new_knob was accepted")

# a report axis
assert "new_knob" in ARCH_FIELDS
rows = [{"trial_id": f"t{i}", "name": c.name, "regime": "rs-10", "epochs": 10, "seed": 0, "status": "done",
         "final_top1": 50.0 + i, "flops": 1e6 * (i + 1), "params": 1e5, **c.spec.to_dict(), "depth": 18,
         "depth_number": 18} for i, c in enumerate(expansion.configs)]
effects = axis_effects(pd.DataFrame(rows))
assert "new_knob" in set(effects["axis"]), sorted(set(effects["axis"]))
print("ok")
'''


def test_a_new_archspec_field_reaches_flags_space_axes_and_report_axes(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    spec_py = tmp_path / "scaling" / "spec.py"
    text = spec_py.read_text()
    anchor = "    resolution: int = 224\n"
    assert text.count(anchor) == 1
    spec_py.write_text(text.replace(anchor, anchor + "    #: A knob added by the extension test.\n"
                                                     "    new_knob: int = 0\n"))
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
