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
