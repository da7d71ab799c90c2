"""archscale train: run one trial (one spec, one regime, one data set, one seed).

    archscale train --preset resnext29_8x64d --width-multiplier 0.25 --resolution 16 \\
        --regime rs-10 --epochs 5 --dataset digits
    archscale train --show-regime rs-350 [--preset resnetrs350] [--json]   # every value and its source
    archscale train --preset resnet50 --workers 8 --cpus 8 --dataset imagefolder --data-root /data/imagenet

The per-epoch history is written to --output-dir (or the --checkpoint-dir) as history.csv and
history.json (with the final summary), rewritten after every epoch.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scaling.conventions import FLOP_CONVENTION
from scaling.errors import ArchScaleError
from scaling.wording import plural

from .specargs import add_spec_flags, parse_pairs, spec_overrides, specs_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one network under one regime (one trial)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", help="a preset name (see 'archscale count --help')")
    p.add_argument("--spec", help="an ArchSpec YAML/JSON file")
    p.add_argument("--regime", default="rs-10", help="rs-10, rs-100, rs-350 or classic-90 (default rs-10)")
    p.add_argument("--epochs", type=int, help="shrink/stretch the regime to N epochs, keeping its shape")
    p.add_argument("--batch-size", type=int, help="override the regime's batch size (LR follows linearly)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any regime field, e.g. --set weight_decay=1e-4 --set ema_decay=0")
    p.add_argument("--show-regime", metavar="NAME", help="print a regime's settings and where each comes from "
                                                         "(and its effect on the spec; --json for JSON) and exit")
    p.add_argument("--dataset", help="digits (default), cifar10, cifar100, imagefolder or "
                                        "synthetic ('archscale list datasets')")
    p.add_argument("--dataset-loader", metavar="MODULE:FUNCTION",
                   help="your own data set: a function returning in-memory tensors or a folder (see the README)")
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument for --dataset-loader (repeatable)")
    p.add_argument("--data-root", help="local path of cifar10/cifar100/imagefolder data (or the loader's root=)")
    p.add_argument("--dataset-label", help="name for the results, e.g. imagenet for an ImageNet folder")
    p.add_argument("--decode", choices=("auto", "workers", "device"),
                   help="a folder's JPEGs: decoded in the DataLoader workers, batched on the training device, or "
                        "auto (default: workers on a CPU, the faster of the two by a short measurement on a GPU)")
    p.add_argument("--on-bad-file", choices=("error", "skip"),
                   help="a folder image that cannot be read: stop with one line naming it (error, the default) "
                        "or leave it out and count it (skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--cpus", type=int, help="CPU threads for this trial (per worker)")
    p.add_argument("--workers", type=int, default=1,
                   help="train data-parallel on N workers through Ray Train (one GPU each with CUDA; same global "
                        "batch and recipe as one worker); default 1: no Ray")
    p.add_argument("--sync-bn", action="store_true", help="with --workers: batch-norm statistics of the whole global "
                                                         "batch instead of each worker's")
    p.add_argument("--address", help="with --workers: a Ray cluster to run on (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--output-dir", help="write history.csv and history.json here (default: --checkpoint-dir)")
    p.add_argument("--checkpoint-dir", help="keep a checkpoint here (written atomically; see the next two flags)")
    p.add_argument("--checkpoint-interval-s", type=float, metavar="SECONDS",
                   help="checkpoint after the first epoch that ends this long after the last checkpoint, and "
                        "after the last epoch (default 60; 0 = every epoch)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="checkpoint every N epochs and after the last instead (0 = never)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick checks)")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    add_spec_flags(p)
    p.set_defaults(func=run)


def _regime(args):
    from ..train.regimes import get_regime

    overrides = dict(parse_pairs(args.set, "set"))
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    return get_regime(args.show_regime or args.regime, **overrides)


def _spec(args, required: bool):
    presets = [args.preset] if args.preset else []
    files = [args.spec] if args.spec else []
    overrides = spec_overrides(args)
    if not presets and not files and not overrides:
        if required:
            raise ArchScaleError("preset", "name the network: --preset NAME, --spec FILE, or flags such as "
                                           "--depth 50 --cardinality 32")
        return None
    if len(presets) + len(files) > 1:
        raise ArchScaleError("spec", "give --preset or --spec, not both")
    return specs_from_args(presets, files, overrides)[0]


def run(args) -> int:
    """Train one trial (or print a regime with --show-regime); returns the exit status."""
    if args.show_regime:
        return _show_regime(args)
    from ..results.train_history import strict_json, write_history
    from ..train.regimes import shortening_warning
    from ..train.trial import TrialConfig, check_same_run, load_checkpoint, train_trial
    from .progress import bar

    name, spec = _spec(args, required=True)
    regime = _regime(args)
    dataset = _dataset(args)
    resume = _resume_from(args)
    cfg = TrialConfig(spec=spec, regime=regime, dataset=dataset, seed=args.seed, name=name,
                      device=args.device, cpus=args.cpus, amp=args.amp, channels_last=args.channels_last,
                      compile=args.compile, sync_bn=args.sync_bn, checkpoint_every=args.checkpoint_every,
                      max_steps_per_epoch=args.max_steps_per_epoch, verbose=not args.json,
                      **({} if args.checkpoint_interval_s is None else
                         {"checkpoint_interval_s": args.checkpoint_interval_s}))
    if resume is not None:  # a checkpoint of another run is refused before anything is printed
        resume_path, resume = resume, load_checkpoint(resume)
        check_same_run(resume.get("config") or {}, cfg, resume_path)
    if not args.json:
        print(f"training {name} ({spec.slug()}) under {regime.name} ({plural(regime.epochs, 'epoch')}) on "
              f"{dataset.display_name}, seed {args.seed}")
    shortened = shortening_warning(regime)
    if shortened:
        print(f"warning: {shortened}", file=sys.stderr, flush=True)
    out = args.output_dir or args.checkpoint_dir
    config = cfg.to_dict()
    if args.workers != 1:
        result = _train_data_parallel(cfg, args)
    else:
        on_epoch = (lambda history: write_history(out, history, config=config)) if out else None
        result = train_trial(cfg, checkpoint_dir=args.checkpoint_dir, resume=resume, on_epoch=on_epoch,
                             progress=None if args.json else bar)
    if out:
        csv_path, json_path = write_history(out, result["history"], config=config, summary=result)
    if args.json:
        print(json.dumps(strict_json({k: v for k, v in result.items() if k != "history"}), default=str))
        return 0
    print(f"{result['status']}: final top-1 {result['final_top1']:.2f}%  best top-1 {result['best_top1']:.2f}%  "
          f"top-5 {result['final_top5']:.2f}%{top5_note(result.get('classes'))}  in {result['train_time_s']:.1f}s training "
          f"({result['observed_images_per_s']:.0f} img/s observed, batch {result['batch_size']}, "
          f"lr {result['lr']:.4g}) on "
          f"{result['device']}{_times(result.get('workers', 1))}; {result['params'] / 1e6:.3f} M params, {result['flops'] / 1e9:.4f} GFLOPs "
          f"({FLOP_CONVENTION}); peak memory {_mb(result.get('peak_memory_bytes'))}")
    if out:
        print(f"history: {csv_path} (one row per epoch) and {json_path} (with this summary)")
    return 0


def _dataset(args):
    """The DatasetConfig of the data flags (a built-in data set, or --dataset-loader's function)."""
    from ..data.datasets import dataset_from

    dataset = {"name": args.dataset or "digits"}
    if args.dataset_loader:
        if args.dataset:
            raise ArchScaleError("dataset", "give --dataset or --dataset-loader, not both")
        options = dict(parse_pairs(args.dataset_option, "dataset_option", "KEY=VALUE"))
        dataset = {"loader": args.dataset_loader, "options": options}
    elif args.dataset_option:
        raise ArchScaleError("dataset_option", "--dataset-option is for --dataset-loader's function")
    if args.data_root:
        dataset["root"] = args.data_root
    if args.dataset_label:
        dataset["label"] = args.dataset_label
    for key in ("decode", "on_bad_file"):
        if getattr(args, key):
            dataset[key] = getattr(args, key)
    return dataset_from(dataset)


def _train_data_parallel(cfg, args) -> dict:
    """The trial on ``args.workers`` workers through Ray Train (a local Ray with enough CPUs for
    them, unless --address or RAY_ADDRESS names a cluster); returns rank 0's final metrics."""
    from ..data.datasets import dataset_train_size
    from ..sweep.data_parallel import train_on_workers
    from ..train.loop import effective_batch_size, split_batch

    if args.workers < 1:
        raise ArchScaleError("workers", f"a trial needs at least one worker, got {args.workers}")
    split_batch(effective_batch_size(cfg.regime, dataset_train_size(cfg.dataset)), args.workers, "workers")
    return train_on_workers(cfg, args.workers, cpus=args.cpus or 1, gpu=args.device != "cpu", address=args.address,
                            checkpoint_dir=args.checkpoint_dir, resume=args.resume, progress=not args.json)


def top5_note(classes) -> str:
    """A note after a top-5 accuracy that is 100 % by construction: with 5 classes or fewer every
    label is among the top 5."""
    return f" (trivially: {plural(classes, 'class', 'classes')}, top-5 holds them all)" if classes and classes <= 5 else ""


def _times(workers) -> str:
    return f" x {workers} workers" if workers and workers > 1 else ""


def _show_regime(args) -> int:
    """Every value of the regime (and, with a network, its effective regularisation) and its source."""
    from ..train.sources import regime_sources, sources_text

    regime = _regime(args)
    named = _spec(args, required=False)
    rows = regime_sources(regime, named[1] if named else None)
    if args.json:
        print(json.dumps({"regime": regime.name, "description": regime.description,
                          "spec": named[0] if named else None, "rows": rows}))
        return 0
    print(f"regime {regime.name}: {regime.description}" + (f"; network {named[0]}" if named else ""))
    print(sources_text(rows))
    return 0


def _resume_from(args) -> Path | None:
    """The checkpoint file to resume from: None without --resume or when there is none yet."""
    from ..train.trial import STATE_FILE

    if not args.resume:
        return None
    if not args.checkpoint_dir:
        raise ArchScaleError("resume", "--resume needs --checkpoint-dir DIR")
    state = Path(args.checkpoint_dir) / STATE_FILE
    if not state.is_file():
        print(f"no checkpoint in {args.checkpoint_dir} yet: starting from scratch")
        return None
    return state


def _mb(b) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f} MB"
