"""Why a families_coverage cell undercovers: the GMM standard error against its parts.

    python benchmarks/families_se_diagnosis.py probit useful --trials 1000
    python benchmarks/families_se_diagnosis.py "quantile 0.9" useful --trials 200

For one cell of ``benchmarks/families_coverage.py`` (same draws, same seeds)
this compares, over the trials, the plain two-step standard error
(``fit(correction=None, shrinkage=None)``) of the target coefficient with

- the asymptotic standard deviation: ``(G0' S0^-1 G0)^-1 / N`` with the
  population G0 and S0 taken from one study 100 times larger (same n / N);
- the spread of the first-order approximation ``beta0 - A0 gbar(beta0)``
  (population A0, the trial's moments at the true values), of the two-step
  estimate with the population weight matrix S0^-1 ("infeasible"), and of
  the estimate itself;
- the standard error recomputed with the population G0 or S0 in place of the
  trial's G or S, and with only the target block of G replaced (which
  component of the sandwich is off, and by how much);
- the effective number of auxiliary coefficients that the control-variate
  regression of the target's moments on the auxiliary labeled moments
  overfits, ``k = n sum_i l_e,i l_a,i / q`` (``l_e`` the leverage of a
  labeled unit's residual in the residual covariance, ``l_a`` of its auxiliary
  moments in S_aa): q M when the two are independent, the count the default
  correction's ``n / (n - p - s q M)`` uses.

Prints a table (mean over trials) and writes it to ``--output`` (markdown).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import families_coverage as fc  # noqa: E402

import synthinfer.api as smf  # noqa: E402
from synthinfer.covariance import get_covariance  # noqa: E402

POPULATION_SCALE = 100


def _draw(estimand: str, quality: str, n: int, seed: int):
    rng = np.random.default_rng([seed, n, list(fc.ESTIMANDS).index(estimand), quality == "noise"])
    return fc.ESTIMANDS[estimand](rng, n, quality)


def _model(draw):
    return smf.gmm_synth(draw.formula, real=draw.real, proxy=draw.proxy, synth=draw.synth, model=draw.model)


def population(estimand: str, quality: str, n: int):
    """beta0 (target at the truth), G0, S0 and A0 from one study POPULATION_SCALE times larger."""
    units = fc.N_UNITS
    fc.N_UNITS = units * POPULATION_SCALE
    try:
        draw = fc.ESTIMANDS[estimand](np.random.default_rng([7, 7]), n * POPULATION_SCALE, quality)
    finally:
        fc.N_UNITS = units
    model = _model(draw)
    res = model.fit(correction=None, shrinkage=None)
    beta0 = np.asarray(res._results.params_full, dtype=float).copy()
    hc0 = get_covariance("HC0", None, model.model_data, model.family)
    S0, G0 = hc0.s(model.moment_blocks(beta0)), model.jacobian(beta0)
    j = list(res.params.index).index(draw.term)
    beta0[j] = draw.truth
    W0 = np.linalg.inv(S0)
    A0 = np.linalg.solve(G0.T @ W0 @ G0, G0.T @ W0)
    return beta0, G0, S0, A0, j


def _se(G: np.ndarray, S: np.ndarray, n_units: int, j: int) -> float:
    return float(np.sqrt(np.linalg.inv(G.T @ np.linalg.solve(S, G))[j, j] / n_units))


def effective_auxiliary_coefficients(model, params: np.ndarray) -> float:
    """``n sum_i l_e,i l_a,i / q`` over the labeled units, at ``params`` (HC0)."""
    g = model.momcond(params)
    n_units = len(g)
    g = g - g.mean(axis=0)
    q = model.layout.q
    S = g.T @ g / n_units
    labeled = model.model_data.labeled_pos
    h_t, h_a = g[labeled, :q], g[labeled, q:]
    inv_aa = np.linalg.pinv(S[q:, q:])
    e = h_t - h_a @ (inv_aa @ S[q:, :q])
    omega = e.T @ e / n_units
    lev_a = np.einsum("ij,jk,ik->i", h_a, inv_aa, h_a) / n_units
    lev_e = np.einsum("ij,jk,ik->i", e, np.linalg.pinv(omega), e) / n_units
    return len(labeled) * float(lev_e @ lev_a) / q


def one_trial(estimand, quality, n, seed, beta0, G0, S0, A0, j) -> dict | None:
    draw = _draw(estimand, quality, n, seed)
    model = _model(draw)
    layout = model.layout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = model.fit(correction=None, shrinkage=None)._results
            start, _ = model._step_one()
            W0 = np.linalg.inv(S0)
            if model.family.smooth:
                infeasible = model._gauss_newton(start, W0)[0]
            else:
                infeasible = model._one_step(start, W0)[0]
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            return None
    G, S, N = res.jacobian, res.moment_covariance, model.nobs
    G_target0 = G.copy()
    G_target0[layout.moment_block(0), layout.param_block(0)] = G0[layout.moment_block(0), layout.param_block(0)]
    return {
        "human only": start[j], "first order": (beta0 - A0 @ model.momcond_mean(beta0))[j],
        "infeasible (W = S0^-1)": infeasible[j], "two-step": res.params_full[j],
        "se": _se(G, S, N, j), "se, G0": _se(G0, S, N, j), "se, S0": _se(G, S0, N, j),
        "se, target block of G from G0": _se(G_target0, S, N, j),
        "k": effective_auxiliary_coefficients(model, res.params_full), "qM": layout.q * layout.n_sources,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estimand", choices=list(fc.ESTIMANDS))
    parser.add_argument("quality", choices=["useful", "noise"])
    parser.add_argument("--n-labeled", type=int, default=200)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    beta0, G0, S0, A0, j = population(args.estimand, args.quality, args.n_labeled)
    asymptotic = _se(G0, S0, fc.N_UNITS, j)
    rows = [one_trial(args.estimand, args.quality, args.n_labeled, s, beta0, G0, S0, A0, j) for s in range(args.trials)]
    frame = pd.DataFrame([r for r in rows if r is not None])
    spreads = ["human only", "first order", "infeasible (W = S0^-1)", "two-step"]
    ses = ["se", "se, G0", "se, S0", "se, target block of G from G0"]
    lines = [
        f"{args.estimand}, {args.quality} auxiliary data, n = {args.n_labeled}, N = {fc.N_UNITS}: "
        f"{len(frame)} trials ({args.trials - len(frame)} failed), plain two-step fit",
        "", "| quantity | value |", "|---|---|",
        f"| asymptotic SD of the two-step estimate | {asymptotic:.4f} |",
    ]
    lines += [f"| SD, {name} | {frame[name].std():.4f} |" for name in spreads]
    lines += [f"| mean {name} | {frame[name].mean():.4f} |" for name in ses]
    lines.append(f"| effective auxiliary coefficients k (mean; q M = {int(frame['qM'].iloc[0])}) | {frame['k'].mean():.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "a") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
