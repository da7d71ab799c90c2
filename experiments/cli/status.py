"""archscale status: where a sweep stands, from any terminal, while it runs and after.

    archscale status OUTPUT_DIR [--watch [SECONDS]] [--json]

Reads only the sweep's output directory (plan.json and the journal events.jsonl), so it works on
any machine that sees that folder, and needs no Ray: one line per trial (status, epoch n/N, last
and best top-1, time, health), then the counts, the health counts with a line per flagged trial
(experiments.results.health), the best trial so far and the estimated time left.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter

from scaling.wording import plural

NAME = "status"
#: What a pending or running trial of a sweep without a live driver shows.
NOT_RUNNING = "driver not running"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="where a running or finished sweep stands (reads its output directory)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="OUTPUT_DIR", help="a sweep's output directory")
    p.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                   help="redraw every SECONDS (default 2) until no trial is pending or running; Ctrl-C stops. "
                        "Off a terminal (a log, a pipe): the status once, then a line per trial that changed")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (with --watch: one per refresh, or off a terminal one per change)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Print the sweep's status (again and again with --watch); returns the exit status."""
    from scaling.errors import ArchScaleError

    from ..results.status import sweep_status

    if args.watch is not None and not args.watch > 0:
        raise ArchScaleError("watch", f"seconds between refreshes must be > 0, got {args.watch:g}")
    tty = sys.stdout.isatty()
    clear = args.watch is not None and tty and not args.json
    shown = None  # off a terminal, --watch prints what changed since the last state shown
    try:
        while True:
            status = sweep_status(args.run_dir)
            if args.watch is None or clear or shown is None:
                text = json.dumps(status.to_dict()) if args.json else render(status)
                print(("\033[H\033[J" if clear else "") + text, flush=True)
            elif state(status) != state(shown):
                print(json.dumps(status.to_dict()) if args.json else "\n".join(changes(shown, status)), flush=True)
            if state(status) != state(shown):
                shown = status
            if args.watch is None or status.finished:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def state(status) -> tuple | None:
    """What a change of is worth a line in a log: each trial's status, epoch and health, and whether
    the driver runs (not the clocks, which move every second)."""
    if status is None:
        return None
    return (tuple((t.trial_id, shown_status(status, t), t.epoch, t.health) for t in status.trials), status.finished,
            tuple(status.counts.items()))


def changes(old, new) -> list[str]:
    """A line per trial whose state changed from ``old`` to ``new``, then the counts (and the end)."""
    before = {t.trial_id: (shown_status(old, t), t.epoch, t.health) for t in old.trials}
    lines = [f"{t.name} {t.regime} seed {t.seed}: {shown_status(new, t)}, epoch {t.epoch}/{t.epochs}, "
             f"top-1 {_pct(t.top1)}{f', {t.health}' if t.health else ''}"
             for t in new.trials if before.get(t.trial_id) != (shown_status(new, t), t.epoch, t.health)]
    end = "; finished: no trial pending or running" if new.finished else ""
    lines.append(f"sweep {new.name}: {shown_counts(new)}{end}")
    return lines


def shown_status(status, trial) -> str:
    """A trial's status as shown: a pending or running trial of a sweep whose driver is gone is
    ``NOT_RUNNING``."""
    waiting = not status.driver_running and not status.finished
    return NOT_RUNNING if waiting and trial.status in ("pending", "running") else trial.status


def shown_counts(status) -> str:
    """The trials' counts by shown status, as "done 4, driver not running 4"."""
    counts = Counter(shown_status(status, t) for t in status.trials)
    return ", ".join(f"{k} {counts[k]}" for k in [*status.counts, NOT_RUNNING] if counts.get(k))


def render(status) -> str:
    """The status as text: a table of trials, then the sweep's counts, best top-1 and ETA."""
    rows = [("trial", "regime", "seed", "status", "epoch", "top-1", "best", "time", "health")]
    waiting = not status.driver_running and not status.finished
    for t in status.trials:
        rows.append((t.name, t.regime, str(t.seed), shown_status(status, t), f"{t.epoch}/{t.epochs}", _pct(t.top1),
                     _pct(t.best_top1), _clock(t.time_s) if t.time_s else "-", t.health or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 4, 5, 6, 7}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.append(f"sweep {status.name}: {len(status.trials)} trials: {shown_counts(status)}")
    if status.health:
        lines.append("health: " + ", ".join(f"{k} {v}" for k, v in status.health.items()))
    lines += [f"flagged: {t.name} ({t.regime}, seed {t.seed}) {t.health}: {t.health_reason}" for t in status.flagged]
    best = status.best
    lines.append(f"best top-1 so far: {best.best_top1:.2f}% {best.name} ({best.regime}, seed {best.seed})"
                 if best else "best top-1 so far: none yet")
    if status.finished:
        lines.append("finished: no trial pending or running")
    elif waiting:
        left = sum(status.counts.get(k, 0) for k in ("pending", "running", "interrupted")) + status.user_errors
        again = f" ({status.user_errors} failed on a user error)" if status.user_errors else ""
        lines.append(f"{NOT_RUNNING}: {plural(left, 'trial')} wait{'s' if left == 1 else ''}{again}; rerun "
                     f"'archscale sweep SPEC' to resume them (with --restart when Tune's saved state cannot be "
                     f"restored)")
    else:
        eta = _clock(status.eta_s) if status.eta_s is not None else "not known until a trial has finished"
        idle = f"; journal last written {_clock(status.idle_s)} ago" if status.idle_s is not None else ""
        lines.append(f"ETA {eta}{idle}")
    if status.times is not None:
        from ..results.timeline import times_line

        lines.append(times_line(status.times))
    return "\n".join(lines)


def _pct(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2f}"


def _clock(s: float) -> str:
    """h:mm:ss or m:ss."""
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
