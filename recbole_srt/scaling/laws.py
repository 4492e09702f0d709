"""The paper's scaling-law fits (§4.3-4.4): the envelope of best NDCG per FLOP budget, log-log power laws along it,
linear and sigmoid NDCG vs log FLOPs (eq. 3), and NDCG(N, T) = E - A/N^alpha - B/T^beta (eq. 4).

Fits use scipy's bounded least squares from several starting points and report their coefficients, R², and the
error in predicting the largest-compute point when it is left out of the fit. log is the natural logarithm, as
in the paper (its eq. 3 puts the inflection at log FLOPs = 24.44).
"""

import numpy as np
from scipy.optimize import least_squares

PAPER_SIGMOID = {"a": 0.396, "k": 0.18, "x0": 24.44, "c": 0.247}
PAPER_RISK = {"E": 0.163, "A": 18.56, "alpha": 0.376, "B": 2.9, "beta": 0.364}


def envelope(flops, ndcg):
    """Indices of the points that beat every point of no larger compute: the best NDCG per FLOP budget."""
    order = np.lexsort((-np.asarray(ndcg), np.asarray(flops)))
    best, kept = -np.inf, []
    for i in order:
        if ndcg[i] > best:
            kept.append(int(i))
            best = ndcg[i]
    return kept


def r_squared(y, predicted):
    y = np.asarray(y, dtype=float)
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - ((y - predicted) ** 2).sum() / total) if total > 0 else float("nan")


def _largest_left_out(fit, predict, x, y, compute):
    """Relative error of predicting the largest-compute point from a fit of the others (None if too few)."""
    if len(y) < 4:
        return None
    last = int(np.argmax(compute))
    keep = np.arange(len(y)) != last
    params = fit(*(v[keep] for v in x), y[keep])
    if params is None:
        return None
    predicted = float(predict(params, *(v[last : last + 1] for v in x))[0])
    return {"predicted": predicted, "observed": float(y[last]),
            "relative_error": abs(predicted - y[last]) / abs(y[last])}


def power_law(x, y, compute=None):
    """y = C * x^slope, fitted as a line in log-log space."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def fit(x, y):
        return np.polyfit(np.log(x), np.log(y), 1) if len(x) >= 2 else None

    def predict(params, x):
        return np.exp(np.polyval(params, np.log(x)))

    params = fit(x, y)
    return {"slope": float(params[0]), "coefficient": float(np.exp(params[1])),
            "r2": r_squared(np.log(y), np.polyval(params, np.log(x))),
            "largest_left_out": _largest_left_out(fit, predict, (x,), y, x if compute is None else compute)}


def linear_in_log(flops, ndcg):
    """NDCG = slope * log(FLOPs) + intercept."""
    x, y = np.log(np.asarray(flops, dtype=float)), np.asarray(ndcg, dtype=float)

    def fit(x, y):
        return np.polyfit(x, y, 1)

    def predict(params, x):
        return np.polyval(params, x)

    params = fit(x, y)
    return {"slope": float(params[0]), "intercept": float(params[1]), "r2": r_squared(y, predict(params, x)),
            "largest_left_out": _largest_left_out(fit, predict, (x,), y, x)}


def sigmoid(params, x):
    a, k, x0, c = params
    return a / (1 + np.exp(-k * (x - x0))) - c


def _fit_sigmoid(x, y):
    span, low, high = float(np.ptp(y)) or 1e-3, float(y.min()), float(y.max())
    best = None
    for k in (0.05, 0.2, 1.0):
        for x0 in np.quantile(x, [0.2, 0.5, 0.8]):
            for a in (span * 1.5, span * 4):
                start = [a, k, x0, a - high - 0.1 * span] if a > high else [a, k, x0, -low]
                result = least_squares(lambda p: sigmoid(p, x) - y, start,
                                       bounds=([0, 0, -np.inf, -np.inf], [np.inf, np.inf, np.inf, np.inf]))
                if best is None or result.cost < best.cost:
                    best = result
    return best.x


def sigmoid_in_log(flops, ndcg):
    """NDCG = a / (1 + exp(-k (log FLOPs - x0))) - c (eq. 3): ceiling a - c; the inflection x0 is where the gain
    per unit of log FLOPs peaks and returns start to diminish (the value there is a/2 - c)."""
    x, y = np.log(np.asarray(flops, dtype=float)), np.asarray(ndcg, dtype=float)
    a, k, x0, c = params = _fit_sigmoid(x, y)
    return {"a": float(a), "k": float(k), "x0": float(x0), "c": float(c), "ceiling": float(a - c),
            "diminishing_returns_flops": float(np.exp(x0)), "value_at_x0": float(a / 2 - c),
            "r2": r_squared(y, sigmoid(params, x)),
            "largest_left_out": _largest_left_out(_fit_sigmoid, sigmoid, (x,), y, x)}


# Non-negative coefficients (eq. 4); E, the NDCG of infinite N and T, is at most 1; exponents at most 3. Without
# the caps a few points admit degenerate fits (E of 3, exponents near 0, terms cancelling).
RISK_BOUNDS = ([0, 0, 0, 0, 0], [1, np.inf, 3, np.inf, 3])


def risk(params, n, t):
    e, a, alpha, b, beta = params
    return e - a / n**alpha - b / t**beta


def _fit_risk(n, t, y):
    best = None
    for alpha in (0.1, 0.4, 0.8):
        for beta in (0.1, 0.4, 0.8):
            start = [float(y.max()) + 0.01, float(np.median(n)) ** alpha * 0.05,
                     alpha, float(np.median(t)) ** beta * 0.05, beta]
            result = least_squares(lambda p: risk(p, n, t) - y, start, bounds=RISK_BOUNDS, x_scale="jac")
            if best is None or result.cost < best.cost:
                best = result
    return best.x


def risk_decomposition(n, t, ndcg, compute):
    """NDCG(N, T) = E - A / N^alpha - B / T^beta with non-negative coefficients (eq. 4)."""
    n, t, y = (np.asarray(v, dtype=float) for v in (n, t, ndcg))
    params = _fit_risk(n, t, y)
    return {**dict(zip(("E", "A", "alpha", "B", "beta"), map(float, params))), "r2": r_squared(y, risk(params, n, t)),
            "largest_left_out": _largest_left_out(_fit_risk, risk, (n, t), y, np.asarray(compute, dtype=float))}
