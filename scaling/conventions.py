"""Conventions and constants every layer shares: one source for each.

- ``FLOP_CONVENTION``: how FLOPs are counted everywhere in this project (fvcore's count, one
  multiply-add = one FLOP, as in the ResNeXt paper; the ResNet-RS paper's FLOPs are twice these).
- ``TRAIN_FLOPS_PER_FORWARD``: training FLOPs per image = 3 x forward FLOPs (the backward pass
  costs about twice the forward); the usual estimate (Kaplan et al. 2020, "Scaling Laws for
  Neural Language Models", C ~ 6N per token = 3 x the 2N forward).
- ``DATASET_TRAIN_SIZES``: training images of the data sets the project knows by name (the
  published split sizes), for pricing a sweep on a machine without the data.
- ``LONG_REGIME_EPOCHS``, ``SHORT_REGIME_EPOCHS``: where ResNet-RS' long and short training
  regimes begin and end (the resnet_rs scaling strategy and the report's findings read them).
"""
from __future__ import annotations

FLOP_CONVENTION = "fvcore: 1 multiply-add = 1 FLOP"
TRAIN_FLOPS_PER_FORWARD = 3
#: ImageNet-1k (ILSVRC-2012) train split: 1,281,167 images; CIFAR-10/100: 50,000 each.
DATASET_TRAIN_SIZES: dict[str, int] = {"imagenet": 1_281_167, "cifar10": 50_000, "cifar100": 50_000}
#: Training lengths the ResNet-RS study contrasts (Bello et al. 2021, section 7): depth scaling wins
#: at 350 epochs, width scaling at 10, and at 100 the winner depends on the resolution. A regime of at
#: least LONG_REGIME_EPOCHS epochs counts as long, one of at most SHORT_REGIME_EPOCHS as short.
LONG_REGIME_EPOCHS = 150
SHORT_REGIME_EPOCHS = 30

#: Every status a trial can have, in the order they are counted and shown: ended (a result or a
#: failure), then unfinished. done: trained every epoch; stopped: stopped early by the scheduler (a
#: result with fewer epochs); diverged: the loss went NaN (a result, not an error); error: failed;
#: interrupted: a stop signal or a lost node interrupted it (a rerun continues it); running; pending.
TRIAL_STATUSES = ("done", "stopped", "diverged", "error", "interrupted", "running", "pending")
#: Statuses a trial ends with: a rerun does not train it again (``error`` only when retrying is off).
FINAL_STATUSES = TRIAL_STATUSES[:4]
#: Ended trials that hold a result to plot (a failed trial holds none).
RESULT_STATUSES = TRIAL_STATUSES[:3]
#: Statuses of a trial that has not ended: a sweep with one is not finished.
UNFINISHED_STATUSES = TRIAL_STATUSES[4:]

#: A trial's health verdict (experiments.results.health), "ok" first: ``at_chance`` (final top-1 near
#: chance), ``not_converged`` (still improving fast at the end), ``diverged`` (the loss went NaN or
#: climbed far above its lowest), ``seeds_disagree`` (the network's seeds end far apart). Reports leave
#: every verdict but "ok" out of fronts, fits and findings.
HEALTH_VALUES = ("ok", "at_chance", "not_converged", "diverged", "seeds_disagree")
