"""Scaling-law fit: top-1 error = a * GFLOPs^(-b) + c, by least squares, with uncertainties.

``scipy.optimize.curve_fit`` does the fit (bounded: ``a, c >= 0``, ``b`` in [0.001, 3]) and
reports the covariance (residual variance times (J^T J)^-1 at the optimum). It starts from the
best of a coarse scan of ``b``, where the model is linear in ``a`` and ``c`` and
``scipy.optimize.nnls`` solves them exactly, so a poor start cannot trap it in a side valley.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import curve_fit, nnls

__all__ = ["PowerLawFit", "fit_power_law", "MIN_CONFIGS", "MIN_SPAN"]

#: Fewest distinct FLOP values a fit needs: three parameters plus one degree of freedom.
MIN_CONFIGS = 4
#: Smallest ratio of largest to smallest FLOPs a fit accepts.
MIN_SPAN = 1.5
_B_RANGE = (1e-3, 3.0)


@dataclass(frozen=True)
class PowerLawFit:
    """error(F) = a * (F / 1e9)^(-b) + c, with F the FLOPs per image and error in percent.

    ``a``: error above the floor at 1 GFLOP (percentage points); ``b``: the exponent (unitless,
    larger = error falls faster with compute); ``c``: the error floor (%). ``*_std``: standard
    errors from the fit's covariance (NaN when the fit did not run). ``n_points``: measured
    points used (one per trial, seeds included); ``n_configs``: distinct FLOP values among them;
    ``rmse``: root-mean-square residual (percentage points). ``ok`` is False when there were too
    few points to fit, and ``note`` says why or flags a boundary solution.
    """

    a: float
    b: float
    c: float
    a_std: float
    b_std: float
    c_std: float
    n_points: int
    n_configs: int
    rmse: float
    ok: bool
    note: str = ""
    cov: tuple = ()

    def predict(self, flops) -> np.ndarray:
        """Fitted error (%) at ``flops`` (FLOPs per image, fvcore convention)."""
        x = np.asarray(flops, dtype=float) / 1e9
        return self.a * x ** (-self.b) + self.c

    def gain_per_doubling(self, flops: float) -> tuple[float, float]:
        """(gain, std): percentage points of error removed by doubling FLOPs at ``flops``.

        The slope of the fitted curve, -d error / d log2(FLOPs) = ln2 * a * b * x^-b (x in
        GFLOPs), with its standard error by the delta method. At one budget the ranking of
        dimensions by this number is the ranking by accuracy per added FLOP.
        """
        if not self.ok:
            return math.nan, math.nan
        x = flops / 1e9
        xb = x ** (-self.b)
        gain = math.log(2) * self.a * self.b * xb
        grad = np.array([math.log(2) * self.b * xb,
                         math.log(2) * self.a * xb * (1.0 - self.b * math.log(x)), 0.0])
        cov = np.asarray(self.cov, dtype=float).reshape(3, 3) if self.cov else np.full((3, 3), np.nan)
        var = float(grad @ cov @ grad)
        return gain, math.sqrt(var) if var >= 0 else math.nan

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("cov")
        return d


def _curve(u, a, b, c):
    """The model on scaled FLOPs ``u``: a * u^-b + c."""
    return a * u ** (-b) + c


def _start(u: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """A starting (a, b, c): the scanned ``b`` whose non-negative least-squares (a, c) fit best."""
    best = None
    for b in np.geomspace(*_B_RANGE, 24):
        (a, c), rnorm = nnls(np.column_stack([u ** (-b), np.ones_like(u)]), y)
        if best is None or rnorm < best[0]:
            best = (rnorm, float(a), float(b), float(c))
    return best[1:]


def fit_points(flops, error, min_span: float = MIN_SPAN) -> tuple[np.ndarray, np.ndarray, PowerLawFit | None]:
    """(GFLOPs, error, None) of the points a fit uses (finite, positive FLOPs), or (.., .., a
    not-ok ``PowerLawFit`` saying why) when they cannot constrain three parameters."""
    x = np.asarray(flops, dtype=float) / 1e9
    y = np.asarray(error, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    n, k = len(x), len(np.unique(x))
    nan = math.nan
    if k < MIN_CONFIGS or n <= 3:
        return x, y, PowerLawFit(nan, nan, nan, nan, nan, nan, n, k, nan, False,
                                 f"{k} distinct FLOP values; a 3-parameter fit needs at least {MIN_CONFIGS}")
    if x.max() < min_span * x.min():
        return x, y, PowerLawFit(nan, nan, nan, nan, nan, nan, n, k, nan, False,
                                 f"FLOPs span only x{x.max() / x.min():.2f} (a fit needs x{min_span:g}): "
                                 "compare these at equal FLOPs instead")
    return x, y, None


def fit_power_law(flops, error, *, min_span: float = MIN_SPAN) -> PowerLawFit:
    """Fit error = a * (FLOPs / 1e9)^(-b) + c to measured points and return a ``PowerLawFit``.

    ``flops``: FLOPs per image (fvcore convention), ``error``: top-1 error in percent, one
    point per trial (pass the seeds separately; they make the uncertainty honest). Non-finite
    and non-positive-FLOP points are dropped. With fewer than ``MIN_CONFIGS`` distinct FLOP
    values, or when the largest FLOPs are less than ``min_span`` times the smallest (an exponent
    read off a few percent of FLOPs is noise: cardinality varied at constant FLOPs, say), the fit
    does not run (``ok=False``, NaN parameters, ``note`` says why). ``b`` is searched in [0.001, 3].
    """
    x, y, refused = fit_points(flops, error, min_span)
    if refused is not None:
        return refused
    n, k = len(x), len(np.unique(x))
    # Fit on FLOPs scaled around 1 for conditioning: a_s * (x/s)^-b = (a_s * s^b) * x^-b.
    s = math.exp(float(np.mean(np.log(x))))
    u = x / s
    a_s, b, c = _start(u, y)
    (a_s, b, c), cov_s = curve_fit(_curve, u, y, p0=(max(a_s, 1e-12), b, c),
                                   bounds=([0.0, _B_RANGE[0], 0.0], [np.inf, _B_RANGE[1], np.inf]))
    a = a_s * s ** b
    # The covariance of (a, b, c) in GFLOPs from that of (a_s, b, c): a = a_s * s^b.
    to_gflops = np.array([[s ** b, a * math.log(s), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cov = to_gflops @ cov_s @ to_gflops.T if n > 3 else np.full((3, 3), math.nan)
    r = y - _curve(x, a, b, c)
    note = ""
    if min(b - _B_RANGE[0], _B_RANGE[1] - b) < 1e-6 * _B_RANGE[1]:
        note = f"b at the edge of its search range [{_B_RANGE[0]}, {_B_RANGE[1]}]: the points do not constrain it"
    elif a <= 1e-12:
        note = "error does not fall with FLOPs on these points"
    std = np.sqrt(np.clip(np.diag(cov), 0, None))
    return PowerLawFit(float(a), float(b), float(c), float(std[0]), float(std[1]), float(std[2]), n, k,
                       math.sqrt(float(r @ r) / n), True, note, tuple(float(v) for v in cov.ravel()))
