"""A network's measured cost, joined to the trials that trained it: what the cost axes read.

The cost store (costs.parquet, one row per network and device; experiments.results.costs) is
passed in as a table; the trials table names each trial's network by ``fingerprint``. Pure pandas.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["COST_COLUMNS_JOINED", "attach_costs", "cost_note"]

#: The columns ``attach_costs`` sets on the trials (any the trials table brings is replaced).
COST_COLUMNS_JOINED = ("latency_ms", "throughput", "train_images_per_s", "measured_train_time_s")


def attach_costs(trials: pd.DataFrame, costs: pd.DataFrame | None, device: str | None = None
                 ) -> tuple[pd.DataFrame, dict | None]:
    """(``trials`` with the cost columns of their networks, where the costs came from).

    Columns set: ``latency_ms`` (ms, batch 1) and ``throughput`` (inference images/s), by network;
    ``train_images_per_s`` by network and training batch; ``measured_train_time_s`` = epochs
    trained x images per epoch / ``train_images_per_s`` (the training steps alone, at the measured
    rate). They are NaN where the store has no row, and always replace what a trials table holds
    under those names (an older run's trials timed inference themselves, beside other trials).
    ``device``: the store's device to read (default: the one that measured most of these networks).
    The second value is None without costs, else {"device", "method", "networks", "spread"
    (the largest of the rows')}.
    """
    df = trials.drop(columns=[c for c in COST_COLUMNS_JOINED if c in trials])
    for col in COST_COLUMNS_JOINED:
        df[col] = float("nan")
    if costs is None or not len(costs) or "fingerprint" not in df:
        return df, None
    mine = costs[costs["fingerprint"].isin(set(df["fingerprint"].dropna()))]
    if device is None and len(mine):
        device = mine.groupby("device")["fingerprint"].nunique().idxmax()
    rows = mine[mine["device"] == device]
    if rows.empty:
        return df, None
    by_net = rows.drop_duplicates("fingerprint").set_index("fingerprint")
    df["latency_ms"] = pd.to_numeric(df["fingerprint"].map(by_net["latency_ms"]), errors="coerce")
    df["throughput"] = pd.to_numeric(df["fingerprint"].map(by_net["throughput"]), errors="coerce")
    rate = rows.assign(batch_size=pd.to_numeric(rows["batch_size"])).drop_duplicates(["fingerprint", "batch_size"])
    batch = pd.to_numeric(df["batch_size"], errors="coerce") if "batch_size" in df else float("nan")
    joined = pd.DataFrame({"fingerprint": df["fingerprint"], "batch_size": batch}).merge(
        rate[["fingerprint", "batch_size", "train_images_per_s"]], how="left", on=["fingerprint", "batch_size"])
    df["train_images_per_s"] = pd.to_numeric(joined["train_images_per_s"], errors="coerce").to_numpy()
    if {"epochs_done", "images_per_epoch"} <= set(df):
        images = pd.to_numeric(df["epochs_done"], errors="coerce") * pd.to_numeric(df["images_per_epoch"],
                                                                                    errors="coerce")
        df["measured_train_time_s"] = images / df["train_images_per_s"]
    spread = pd.to_numeric(rows["spread"], errors="coerce").max()
    return df, {"device": str(device), "method": str(rows["method"].iloc[0]), "networks": int(len(by_net)),
                "spread": None if pd.isna(spread) else float(spread)}


def cost_note(source: dict | None) -> str:
    """What a cost figure says about where its costs come from (empty without a source)."""
    if not source:
        return ""
    spread = f"; the timed blocks of a network disagreed by at most {source['spread']:.1%}" \
        if source.get("spread") is not None else ""
    return (f" Costs: the cost store (costs.parquet), {source['networks']} networks measured on {source['device']}, "
            f"not by the trials: {source['method']}{spread}.")
