"""examples/: the pycls-style design-space EDF runs at small size and its counts match the per-config path."""
import importlib.util
from pathlib import Path

import numpy as np
import yaml

from scaling import analytic_counts
from search_spaces import load_space, parse_space

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_design_space_edf_at_small_size(tmp_path, capsys):
    edf = _module("design_space_edf")
    result = edf.main(["--n", "100", "--band", "0.2G,0.6G", "--out", str(tmp_path / "edf")])
    assert (tmp_path / "edf.png").is_file() and (tmp_path / "edf.svg").is_file()
    for name, spec in edf.SPACES.items():
        # the same 100 configs, priced one by one by the closed form: as many in the band
        space = parse_space({"name": name, "kind": "random", "samples": 100, "seed": 0, **spec})
        flops = np.array([analytic_counts(c.spec).flops for c in space.expand().configs])
        assert result[name]["configs"] == 100 and result[name]["in_band"] == int(((flops >= 2e8) & (flops <= 6e8)).sum())
        band = load_space(result[name]["band_spec"])
        assert band.samples == edf.BAND_SAMPLES and band.constraints == {"min_flops": 2e8, "max_flops": 6e8}
        assert yaml.safe_load(Path(result[name]["band_spec"]).read_text())["axes"] == spec["axes"]
    assert "in the band 200-600 MFLOPs" in capsys.readouterr().out
