"""Scaling-law fit: top-1 error = a * GFLOPs^(-b) + c, by least squares, with uncertainties.

For a fixed exponent ``b`` the model is linear in ``a`` and ``c``, so the fit scans ``b`` on a
grid (solving ``a``, ``c`` exactly with ``a, c >= 0``), refines the best ``b`` by golden-section
search, and takes the standard errors from the Jacobian at the optimum (the same covariance
``scipy.optimize.curve_fit`` reports: residual variance times (J^T J)^-1). numpy only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

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


def _solve_ac(u: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (a, c) with a, c >= 0 for y ~ a * u + c; returns (a, c, rss)."""
    n = len(y)
    um, ym = u.mean(), y.mean()
    var_u = float(((u - um) ** 2).sum())
    a = float(((u - um) * (y - ym)).sum() / var_u) if var_u > 0 else 0.0
    c = ym - a * um
    if c < 0:  # floor pinned at zero: a through the origin
        c = 0.0
        a = float((u @ y) / (u @ u)) if (u @ u) > 0 else 0.0
    if a < 0:  # error does not fall with FLOPs: flat line
        a, c = 0.0, max(float(ym), 0.0)
    r = y - (a * u + c)
    return float(a), float(c), float(r @ r) if n else math.nan


def fit_power_law(flops, error, *, min_span: float = MIN_SPAN) -> PowerLawFit:
    """Fit error = a * (FLOPs / 1e9)^(-b) + c to measured points and return a ``PowerLawFit``.

    ``flops``: FLOPs per image (fvcore convention), ``error``: top-1 error in percent, one
    point per trial (pass the seeds separately; they make the uncertainty honest). Non-finite
    and non-positive-FLOP points are dropped. With fewer than ``MIN_CONFIGS`` distinct FLOP
    values, or when the largest FLOPs are less than ``min_span`` times the smallest (an exponent
    read off a few percent of FLOPs is noise: cardinality varied at constant FLOPs, say), the fit
    does not run (``ok=False``, NaN parameters, ``note`` says why). ``b`` is searched in [0.001, 3].
    """
    x = np.asarray(flops, dtype=float) / 1e9
    y = np.asarray(error, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    n, k = len(x), len(np.unique(x))
    nan = math.nan
    if k < MIN_CONFIGS or n <= 3:
        return PowerLawFit(nan, nan, nan, nan, nan, nan, n, k, nan, False,
                           f"{k} distinct FLOP values; a 3-parameter fit needs at least {MIN_CONFIGS}")
    if x.max() < min_span * x.min():
        return PowerLawFit(nan, nan, nan, nan, nan, nan, n, k, nan, False,
                           f"FLOPs span only x{x.max() / x.min():.2f} (a fit needs x{min_span:g}): "
                           "compare these at equal FLOPs instead")
    # Scale x around 1 for conditioning: x^-b = s^-b * (x/s)^-b, so a = a_s * s^-b.
    s = math.exp(float(np.mean(np.log(x))))
    xs = x / s

    def rss(b: float) -> float:
        return _solve_ac(xs ** (-b), y)[2]

    grid = np.geomspace(*_B_RANGE, 160)
    losses = np.array([rss(b) for b in grid])
    i = int(np.argmin(losses))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    g = (math.sqrt(5) - 1) / 2  # golden-section refinement in log b
    la, lb = math.log(lo), math.log(hi)
    for _ in range(60):
        m1, m2 = lb - g * (lb - la), la + g * (lb - la)
        if rss(math.exp(m1)) <= rss(math.exp(m2)):
            lb = m2
        else:
            la = m1
    b = math.exp((la + lb) / 2)
    a_s, c, r = _solve_ac(xs ** (-b), y)
    a = a_s * s ** b  # back to x in GFLOPs: a_s * (x/s)^-b = a_s * s^b * x^-b
    note = ""
    if i in (0, len(grid) - 1):
        note = f"b at the edge of its search range [{_B_RANGE[0]}, {_B_RANGE[1]}]: the points do not constrain it"
    elif a == 0:
        note = "error does not fall with FLOPs on these points"
    # Covariance from the Jacobian of the model in (a, b, c), at x in GFLOPs.
    xb = x ** (-b)
    jac = np.column_stack([xb, -a * np.log(x) * xb, np.ones_like(x)])
    dof = n - 3
    sigma2 = r / dof if dof > 0 else nan
    try:
        cov = sigma2 * np.linalg.pinv(jac.T @ jac)
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), nan)
    std = np.sqrt(np.clip(np.diag(cov), 0, None))
    return PowerLawFit(a, b, c, float(std[0]), float(std[1]), float(std[2]), n, k,
                       math.sqrt(r / n), True, note, tuple(float(v) for v in cov.ravel()))
