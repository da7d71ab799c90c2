"""ASHA with one bracket per regime, so a trial only ever competes with trials of the same length."""
from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler


class RegimeASHA(FIFOScheduler):
    """ASHA with one bracket per regime: a trial only competes with trials of its own length.

    Each regime gets Ray's own ASHAScheduler (time attribute: the epoch, max_t: the regime's
    epochs); this class only routes each trial to its regime's scheduler.
    """

    def __init__(self, regimes: dict[str, int], metric: str, mode: str, grace_period: int,
                 reduction_factor: float):
        super().__init__()
        self.by_regime = {name: ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=epochs,
                                              grace_period=min(grace_period, epochs),
                                              reduction_factor=reduction_factor)
                          for name, epochs in regimes.items()}

    def _of(self, trial) -> ASHAScheduler:
        return self.by_regime[trial.config["trial"]["config"]["regime"]["name"]]

    def set_search_properties(self, metric, mode, **spec):
        return all(a.set_search_properties(metric, mode, **spec) for a in self.by_regime.values())

    def on_trial_add(self, tune_controller, trial):
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "; ".join(f"{k}: {v.debug_string()}" for k, v in self.by_regime.items())
