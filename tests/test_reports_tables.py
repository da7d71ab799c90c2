"""reports/tables.py: the normalised results tables the reports read."""
import dataclasses

from reports.tables import ARCH_FIELDS
from scaling.spec import ArchSpec


def test_arch_fields_are_every_archspec_field_and_the_nominal_depth():
    spec_fields = [f.name for f in dataclasses.fields(ArchSpec)]
    assert [f for f in ARCH_FIELDS if f != "depth_number"] == spec_fields
    assert ARCH_FIELDS[ARCH_FIELDS.index("depth") + 1] == "depth_number"
    assert {"block_form", "shortcut", "sk_paths", "sk_reduction", "sk_min_width", "sk_dilated"} <= set(ARCH_FIELDS)


def test_a_report_normalises_the_trials_table_once_for_all_its_plots(tmp_path, monkeypatch):
    import reports.tables as tables
    from test_reports import synthetic_trials

    from reports import write_report

    trials, epochs = synthetic_trials()
    calls = []
    work = tables._normalise
    monkeypatch.setattr(tables, "_normalise", lambda df: calls.append(len(df)) or work(df))
    summary = write_report(trials, epochs, tmp_path / "report")
    assert len(summary["figures"]) >= 4  # fronts, curves, distributions, learning curves: the plots ran
    assert calls == [len(trials)]


def test_tables_of_gives_what_the_plots_take_and_normalising_again_changes_nothing():
    import pandas as pd

    from reports.tables import aggregate_seeds, normalize_trials, tables_of

    raw = pd.DataFrame({"name": ["a", "a", "b"], "regime": "rs-10", "seed": [0, 1, 0], "status": "done",
                        "final_top1": ["50", 52, 60], "flops": [1e6, 1e6, 2e6], "epochs": 10})
    run = tables_of(raw, pd.DataFrame({"trial_id": ["x"], "epoch": ["1"], "val_top1": ["7.5"]}))
    assert run.trials["final_top1"].tolist() == [50.0, 52.0, 60.0] and run.trials["finished"].all()
    pd.testing.assert_frame_equal(normalize_trials(run.trials), run.trials)
    pd.testing.assert_frame_equal(run.configs, aggregate_seeds(raw))
    assert run.configs.set_index("name")["top1_mean"].to_dict() == {"a": 51.0, "b": 60.0}
    assert run.epochs["val_top1"].tolist() == [7.5] and run.flagged_configs.empty


def test_a_verdict_changed_on_a_normalised_table_is_judged_anew():
    import pandas as pd

    from reports.tables import normalize_trials

    df = normalize_trials(pd.DataFrame({"name": ["a", "b"], "status": "done", "final_top1": [50.0, 60.0],
                                        "health": ["ok", "at_chance"]}))
    assert df["trusted"].tolist() == [True, False]
    again = normalize_trials(df.assign(health="ok", status=["done", "error"]))
    assert again["trusted"].tolist() == [True, False] and again["finished"].tolist() == [True, False]
    assert normalize_trials(df.assign(health="ok"))["trusted"].all()
