import json

import pytest
import yaml
from sweep_helpers import tiny_sweep

from experiments.cli import main
from experiments.sweep.spec import load_sweep, make_plan, prepare, train_size
from scaling import ArchScaleError


def test_plan_is_every_config_regime_and_seed(tmp_path):
    spec = tiny_sweep(tmp_path, widths=(1.0, 2.0), depths=(8, 14), seeds=(0, 1),
                      regimes=[{"name": "rs-10", "epochs": 2}, {"name": "classic-90", "epochs": 3}])
    trials, expansion = make_plan(load_sweep(spec))
    assert len(expansion.configs) == 4 and len(trials) == 4 * 2 * 2
    ids = [t["trial_id"] for t in trials]
    assert len(set(ids)) == len(ids) and "d14-w2-r12__classic-90__s1" in ids
    t = trials[0]
    assert {"params", "flops", "activations", "train_flops", "width_multiplier", "depth", "regime", "seed",
            "config"} <= set(t)
    assert t["config"]["regime"]["epochs"] == 2 and t["config"]["trial"] if False else True
    assert t["train_flops"] == 3 * t["flops"] * 1438 * 2


def test_trial_overrides_apply_by_config_name(tmp_path):
    spec = tiny_sweep(tmp_path, widths=(1.0, 2.0), trial_overrides={"*-w2-*": {"fail_at_epoch": 1}})
    trials, _ = make_plan(load_sweep(spec))
    fails = {t["name"]: t["config"].get("fail_at_epoch") for t in trials}
    assert fails == {"d8-w1-r12": None, "d8-w2-r12": 1}


def test_prepare_writes_plan_and_manifest_and_refuses_another_sweep(tmp_path):
    spec = load_sweep(tiny_sweep(tmp_path / "out"))
    prepare(spec)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {"spec", "versions", "git_commit", "host", "devices", "regimes"} <= set(manifest)
    assert manifest["versions"]["torch"] and manifest["n_trials"] == 1
    prepare(spec)  # the same sweep again: fine (resume)
    two = tiny_sweep(tmp_path / "two", widths=(1.0, 2.0), depths=(8, 14))
    prepare(load_sweep(two))
    two["space"]["axes"] = dict(reversed(list(two["space"]["axes"].items())))  # other order, same trials
    prepare(load_sweep(two))
    other = load_sweep(tiny_sweep(tmp_path / "out", widths=(1.0, 2.0)))
    with pytest.raises(ArchScaleError, match=r"holds a different sweep .*1 trials; this spec: 'tiny', 2 trials, "
                                             r"1 new, 0 changed"):
        prepare(other)


@pytest.mark.parametrize("change,field", [
    ({"schedular": "asha"}, "schedular"),
    ({"resources": {"cpus": 0}}, "resources.cpus"),
    ({"resources": {"gpus": -1}}, "resources.gpus"),
    ({"resources": {"gpu": 1}}, "resources.gpu"),
    ({"scheduler": "hyperband"}, "scheduler"),
    ({"scheduler": {"name": "asha", "reduction_factor": 1}}, "scheduler.reduction_factor"),
    ({"dataset": {"name": "cifar10", "root": "/nonexistent"}}, "dataset.root"),
    ({"regimes": [{"name": "rs-10", "epochs": 2}, {"name": "rs-10", "epochs": 3}]}, "regimes"),
    ({"regimes": ["rs-11"]}, "regime"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"trial": {"epochs": 3}}, "trial.epochs"),
    ({"retries": -1}, "retries"),
    ({"retry_errored_on_resume": "no"}, "retry_errored_on_resume"),
    ({"resources": {"max_concurrent": 0}}, "resources.max_concurrent"),
    ({"scheduler": {"name": "asha", "grace_period": 0}}, "scheduler.grace_period"),
    ({"space": {"base": "resnet50", "axes": {"cardinalty": [1]}}}, "axes.cardinalty"),
    ({"space": {"base": "resnet50", "axes": {"depth": [50]}, "constraints": {"max_params": 1}}}, "space"),
])
def test_bad_sweep_specs_are_rejected_before_ray_starts(tmp_path, change, field):
    spec = tiny_sweep(tmp_path)
    spec.update(change)
    with pytest.raises(ArchScaleError) as e:
        make_plan(load_sweep(spec))  # what run_sweep does before it starts Ray
    assert e.value.field == field and "\n" not in str(e.value)


def test_dry_run_prices_a_sweep_whose_data_is_elsewhere(tmp_path, capsys):
    spec = tiny_sweep(tmp_path / "out", dataset={"name": "imagefolder", "root": "/data/imagenet", "label": "imagenet"})
    with pytest.raises(ArchScaleError, match="ROOT/train/<class>"):
        make_plan(load_sweep(spec))
    trials, _ = make_plan(load_sweep(spec), strict_data=False)
    assert trials[0]["train_flops"] == 3 * trials[0]["flops"] * 1_281_167 * 2
    assert "nominal 1,281,167 images" in train_size(load_sweep(spec).dataset, strict=False)[1]


def test_dry_run_prints_the_plan_and_cost_without_ray(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out", widths=(1.0, 2.0))))
    assert main(["sweep", str(f), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 trials = 2 configs x 1 regime(s)" in out and "total training compute" in out
    assert "1 multiply-add = 1 FLOP" in out and not (tmp_path / "out").exists()
    assert main(["sweep", str(f), "--dry-run", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_trials"] == 2 and doc["train_flops_total"] > 0


def test_bad_sweep_file_exits_2_with_one_line(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("space: {base: resnet50, axes: {depth: [50]}\n")
    assert main(["sweep", str(f)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_workers_must_split_the_global_batch_and_sync_bn_is_a_trial_option(tmp_path):
    spec = tiny_sweep(tmp_path / "out", resources={"workers": 3, "cpus": 1, "gpus": 0})
    with pytest.raises(ArchScaleError, match="resources.workers: regime rs-10's global batch of 64 does not split "
                                             "over 3 workers"):
        make_plan(load_sweep(spec))
    spec = tiny_sweep(tmp_path / "out", resources={"workers": 2, "cpus": 1, "gpus": 0}, trial={"sync_bn": True})
    trials, _ = make_plan(load_sweep(spec))
    assert trials[0]["config"]["sync_bn"] is True and load_sweep(spec).resources.workers == 2


def test_dry_run_prices_gpu_hours_as_workers_times_wall_time_and_warns_on_placement(tmp_path, capsys):
    f, rate = tmp_path / "s.yaml", tmp_path / "rate.jsonl"
    f.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out", resources={"workers": 4, "cpus": 2, "gpus": 1})))
    rate.write_text(json.dumps({"flops": 1e9, "train_throughput": 0.001, "device": "H100"}) + "\n")
    assert main(["sweep", str(f), "--dry-run", "--throughput", str(rate), "--num-cpus", "8", "--num-gpus", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 workers per trial" in out and "GPU-hours = 4 workers x wall time" in out
    assert "warning: a trial needs" not in out  # it fits: no placement warning
    assert main(["sweep", str(f), "--dry-run", "--format", "json", "--throughput", str(rate),
                 "--num-cpus", "8", "--num-gpus", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    trial = doc["trials"][0]
    assert doc["workers"] == 4 and trial["wall_hours"] == pytest.approx(trial["est_hours"] / 4)
    assert trial["gpu_hours"] == pytest.approx(4 * trial["wall_hours"])
    assert doc["placement_warning"].startswith("a trial needs 4 workers of 2 CPU, 1 GPU each, but the cluster's "
                                               "nodes (8 CPU, 2 GPU) hold only 2")
    assert "checked on this machine" in doc["placement_warning"]


def test_a_sweep_names_a_bad_image_in_one_line_before_ray_and_skip_records_it_in_the_manifest(tmp_path, capsys):
    from test_folder import write_folder

    from experiments.results.schema import read_manifest

    data = tmp_path / "data"
    write_folder(data, n=4, size=(16, 16))
    bad = data / "train" / "dog" / "1.jpg"
    bad.write_bytes(b"")  # an empty file, as an interrupted copy leaves
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out", dataset={"name": "imagefolder", "root": str(data)})))
    assert main(["sweep", str(f)]) == 2  # planning reads each file's first bytes: Ray never starts
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "an empty file" in err[0] and not (tmp_path / "out").exists()
    spec = tiny_sweep(tmp_path / "out", dataset={"name": "imagefolder", "root": str(data), "on_bad_file": "skip"})
    trials, _ = prepare(load_sweep(spec))
    check = read_manifest(tmp_path / "out")["data_check"]
    assert check["bad_files_skipped"] == 1 and check["skipped"][0]["path"] == str(bad) and check["train_images"] == 7
    assert trials[0]["config"]["dataset"]["on_bad_file"] == "skip"


def test_trials_start_longest_first_with_a_networks_seeds_back_to_back(tmp_path):
    from experiments.sweep.spec import launch_order

    sweep = load_sweep(tiny_sweep(tmp_path, widths=(0.5, 2.0, 1.0), depths=(8, 14), seeds=(0, 1, 2)))
    trials, _ = make_plan(sweep)
    order = launch_order(trials)
    assert sorted(t["trial_id"] for t in order) == sorted(t["trial_id"] for t in trials)
    names = [t["name"] for t in order]
    assert names == [n for n in dict.fromkeys(names) for _ in range(3)]  # each network's 3 seeds together
    flops = [t["train_flops"] for t in order]
    assert flops == sorted(flops, reverse=True) and flops[0] > flops[-1]
    assert [t["seed"] for t in order[:3]] == [0, 1, 2]


def test_a_folder_from_when_basic_blocks_were_named_c1x64_resumes_under_its_names(tmp_path):
    spec = load_sweep(tiny_sweep(tmp_path / "out", widths=(1.0, 2.0)))
    trials, _ = prepare(spec)
    assert [t["name"] for t in trials] == ["d8-w1-r12", "d8-w2-r12"]  # basic blocks: no C x d
    plan = tmp_path / "out" / "plan.json"
    old = json.loads(plan.read_text())
    for t in old["trials"]:  # the plan as written before: d8-w1-c1x64-r12
        t["name"] = t["name"].replace("-r12", "-c1x64-r12")
        t["trial_id"] = f"{t['name']}__{t['regime']}__s{t['seed']}"
        t["config"]["name"] = t["name"]
    plan.write_text(json.dumps(old))
    trials, _ = prepare(spec)
    assert [t["trial_id"] for t in trials] == ["d8-w1-c1x64-r12__rs-10__s0", "d8-w2-c1x64-r12__rs-10__s0"]
    assert [t["trial_id"] for t in json.loads(plan.read_text())["trials"]] == [t["trial_id"] for t in trials]
