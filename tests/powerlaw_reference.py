"""The power-law fit as it was written by hand (numpy only), kept to check the scipy fit against.

reports/powerlaw.py fitted error = a * GFLOPs^(-b) + c by scanning ``b`` on a grid, solving ``a``
and ``c`` exactly for each, refining ``b`` by golden-section search and taking the covariance from
the Jacobian at the optimum. It now calls ``scipy.optimize.curve_fit``; tests/test_reports.py
checks both give the same parameters and standard errors.
"""
import math

import numpy as np

from reports.powerlaw import _B_RANGE, MIN_SPAN, PowerLawFit, fit_points


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


def hand_written_fit(flops, error, *, min_span: float = MIN_SPAN) -> PowerLawFit:
    """The fit as reports/powerlaw.py did it by hand before it used scipy: a grid over ``b`` with
    (a, c) solved exactly, golden-section refinement, covariance from the Jacobian."""
    x, y, refused = fit_points(flops, error, min_span)  # the same points as the scipy fit
    if refused is not None:
        return refused
    n, k = len(x), len(np.unique(x))
    nan = math.nan
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
