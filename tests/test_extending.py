"""Adding an ArchSpec field is one edit: it reaches the CLI flags, the space axes and the report
axes with nothing else changed (README, "Extending").

The test copies the four packages, adds one documented field to ``scaling/spec.py``'s ArchSpec in
the copy, and checks in a fresh process that the field is a command-line flag, an axis a space can
vary (and names its configs by), and an axis of the report's tables.
"""
import json
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


# ----- the four extension points of README's "Extending": each one an edit of at most two files --
#: (file, text appended to it) per extension. README's "Extending" rows name the same files.
EXTENSIONS = {
    "a data set": [("experiments/data/datasets.py", '''
@register_dataset("stripes", "vertical or horizontal stripes (an extension test)", train_size=lambda cfg: 96)
def _stripes(cfg, resolution, channels, seed, cpus):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (128,), generator=g)
    ramp = (torch.arange(resolution) % 2 * 255).to(torch.uint8)
    x = torch.where(y[:, None, None, None].bool(), ramp[None, :], ramp[:, None]).expand(128, channels, -1, -1)
    return InMemoryData("stripes", x[:96].clone(), y[:96], x[96:].clone(), y[96:], 2, (0.5,) * channels,
                        (0.5,) * channels, flip=False, pad=1)
''')],
    "a block kind": [("scaling/blocks.py", '''

class SingleBlock(_Block):
    """One 3x3 conv-BN and the shortcut (an extension test)."""

    def __init__(self, cin: int, planes: int, stride: int = 1, *, downsample: str = "b", shortcut: bool = True,
                 drop_prob: float = 0.0):
        super().__init__()
        self.conv1, self.bn1 = conv2d(cin, planes, 3, stride), norm2d(planes)
        self._tail(cin, planes, stride, preact=False, downsample=downsample, se_ratio=0.0, shortcut=shortcut,
                   drop_prob=drop_prob)

    def forward(self, x):
        return self._finish(self.bn1(self.conv1(x)), x, x)

    def last_layers(self):
        return [self.bn1]
'''), ("scaling/analytic.py", '''

@register_block("single", expansion=1, convs=1, module="scaling.blocks:SingleBlock", grouped=False)
def single_block_cx(cx: Cx, cin: int, planes: int, stride: int = 1, *, downsample: str = "b", shortcut: bool = True,
                    drop_prob: float = 0.0):
    """Adds SingleBlock(cin, planes, stride, ...) to ``cx``."""
    h_in, w_in = cx.h, cx.w
    conv2d_cx(cx, cin, planes, 3, stride)
    norm2d_cx(cx, planes)
    _tail_cx(cx, cin, planes, stride, h_in, w_in, preact=False, downsample=downsample, se_ratio=0.0,
             shortcut=shortcut)
''')],
    "a plot": [("reports/report.py", '''

def top1_histogram_section(report: Report) -> None:
    """A histogram of the finished configurations' top-1 (an extension test)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.hist(report.trials.loc[report.trials["finished"], "final_top1"])
    report.doc.heading("Top-1 histogram")
    report.add_figure(fig, "top1_histogram", "Final top-1 of every finished trial.")


SECTIONS = (*SECTIONS, top1_histogram_section)
''')],
    "a regime": [("experiments/train/regimes.py", '''
REGIMES["quick-3"] = dataclasses.replace(REGIMES["rs-10"], name="quick-3", epochs=3, warmup_epochs=0,
                                         description="three epochs, no warm-up (an extension test)")
'''), ("experiments/train/sources.py", '''
SOURCES["quick-3"] = {**SOURCES["rs-10"], "epochs": Source(OURS, "an extension test"),
                      "warmup_epochs": Source(OURS, "an extension test")}
''')],
}

CHECK_EXTENSIONS = r'''
import json, sys
from experiments.cli import main
from experiments.results.store import load_results
from reports import write_report
from scaling import ArchSpec, build_model, complexity

out = sys.argv[1]
# a block kind: a spec value, built, counted in closed form exactly as fvcore counts the module
spec = ArchSpec(block="single", depth=[1, 1], widths=[8, 16], stem="cifar", stem_width=8, num_classes=2,
                resolution=8)
model = build_model(spec)
assert type(model.layer2[0]).__name__ == "SingleBlock"
exact, closed = complexity(spec), complexity(spec, counter="analytic")
assert (exact.params, exact.flops) == (closed.params, closed.flops), (exact, closed)
assert exact.params == sum(p.numel() for p in model.parameters())
assert spec.depth_number == 1 * 2 + 2 and spec.expansion == 1

# a data set and a regime, through the command line, on the new block kind
assert main(["list", "datasets"]) == 0 and main(["list", "regimes"]) == 0
assert main(["train", "--block", "single", "--depth", "1,1", "--widths", "8,16", "--stem", "cifar",
             "--stem-width", "8", "--resolution", "8", "--num-classes", "2", "--dataset", "stripes",
             "--regime", "quick-3", "--epochs", "1", "--batch-size", "32", "--output-dir", out + "/train",
             "--json"]) == 0

# a plot: a report of a run has the new section's figure
trials, epochs = load_results(sys.argv[2])
summary = write_report(trials, epochs, out + "/report")
print(json.dumps(summary.get("figures", [])))
'''


def test_each_extension_point_is_at_most_two_files_and_readme_names_them(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Extending"):]
    section = section[:section.index("\n## ", 5)]
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in section.splitlines() if line.startswith("| a")}
    for what, edits in EXTENSIONS.items():
        files = [path for path, _ in edits]
        assert len(files) <= 2, what
        assert [f for f in files if f"`{f}`" not in rows[what]] == [], f"README's row for {what} names other files"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for edits in EXTENSIONS.values():
        for path, text in edits:
            with open(tmp_path / path, "a") as f:
                f.write(text)
    done = subprocess.run([sys.executable, "-c", CHECK_EXTENSIONS, str(tmp_path / "out"),
                           str(ROOT / "tests" / "data" / "run_flat_layout")], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                          "MPLBACKEND": "Agg"}, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    out = done.stdout
    assert "stripes" in out and "quick-3" in out  # listed
    trained = json.loads(out[out.index('{"'):out.index("\n", out.index('{"'))]) if '{"' in out else {}
    assert trained.get("dataset") == "stripes" and trained.get("regime") == "quick-3", out[-2000:]
    assert "top1_histogram" in out.splitlines()[-1]
    assert (tmp_path / "out" / "report" / "figures" / "top1_histogram.png").is_file()
