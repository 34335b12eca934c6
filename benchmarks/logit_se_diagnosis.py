"""Why is the default GMM standard error too small for logit at n = 100?

    python benchmarks/logit_se_diagnosis.py --cell "logit n=100 useful" --studies 2000 --fixed-s 0.795

Per study of a `small_sample_study` cell this records the x1 estimate and its
standard error for the default fit, the plain two-step fit, the human-only fit
and a set of diagnostic variants built from the model's internals:

- ``pop W``: step 2 with the (infeasible) population weight matrix, S from one
  study with N = 100,000 units and n = 10,000 labeled (the same n / N);
- ``iterated``: the weight matrix re-estimated at the step-2 estimate until the
  estimate stops moving (iterated GMM), s = 1;
- standard errors of the plain two-step estimate with G or S replaced by the
  population values, which splits the SE's bias into G's and S's parts;
- ``fixed s`` (``--fixed-s``): the default with the Stein factor fixed (the
  randomness of s is then absent from the estimate);
- the default with its t df and factor counting the auxiliary coefficients at
  q M whatever s, or (clusters) with t df G - 1 - s q M.

``--basic`` keeps the default, plain, small-sample-with-s=1 and human-only
fits. Paired coverage differences from the human-only fit come with their
Monte Carlo SE; results in docs/results/logit_se_diagnosis/.

Prints, per variant, the mean SE over the Monte Carlo SD of the estimate, the
bias, the coverage of a t / normal interval and MSE relative to the human-only fit.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import functools

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_sample_study as sss  # noqa: E402

import synthinfer.api as smf  # noqa: E402
from synthinfer.covariance import get_covariance  # noqa: E402
import synthinfer.gmm as gmm  # noqa: E402
from synthinfer.gmm import weight_matrix  # noqa: E402
from synthinfer.weighting import ShrunkWeight  # noqa: E402

J = slice(0, 3)  # all three coefficients


def build(cell, seed):
    formula, real, proxies, synth, options = sss.draw(cell, seed)
    return smf.gmm_synth(formula, real=real, proxy=proxies, synth=synth or None, model=cell.model), options


def population(cell):
    """S and G at the pseudo-true values from one very large study (same n / N)."""
    saved = sss.N_UNITS
    sss.N_UNITS = 100_000
    try:
        big = sss.Cell(cell.model, cell.n * 100, cell.aux, cell.design, cell.sources, cell.k)
        model, _ = build(big, 12345)
        start, _ = model._step_one()
        s_pop = get_covariance("HC0", None, model.model_data).s(model.moment_blocks(start))
        g_pop = model._jacobian(start)
    finally:
        sss.N_UNITS = saved
    return start, s_pop, g_pop


def sandwich(G, W, S, N):
    A = np.linalg.solve(G.T @ W @ G, G.T @ W)
    return A @ S @ A.T / N


def layout_aux(model):
    return model.layout.q * model.layout.n_sources


def one(cell, seed, pop, fixed_s=None):
    _, s_pop, g_pop = pop
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, options = build(cell, seed)
        formula, real = sss.draw(cell, seed)[:2]
        N = model.nobs
        try:
            d = model.fit(**options)
            out["default"] = (d.params.values[J], d.bse.values[J], d.df_resid)
            out["s"] = d.weighting.factor
            ss = d.small_sample
            # candidates for the df count: without clusters the factor and t df with
            # q M auxiliary coefficients whatever s; with clusters a t df of G - 1 - s q M
            if ss.n_clusters is None:
                full = ss.n_labeled - ss.n_params - layout_aux(model)
                out["default, q M not s"] = (d.params.values[J], d.bse.values[J] * np.sqrt(ss.n_labeled / full / ss.factor), full)
            else:
                out["default, df G-1-s q M"] = (d.params.values[J], d.bse.values[J], ss.n_clusters - 1 - ss.auxiliary_coefficients)
            if fixed_s is not None:
                gmm.ShrunkWeight = functools.partial(ShrunkWeight, factor=fixed_s)
                try:
                    fx = model.fit(**options)
                finally:
                    gmm.ShrunkWeight = ShrunkWeight
                out["fixed s"] = (fx.params.values[J], fx.bse.values[J], fx.df_resid)
            p = model.fit(**options, correction=None, shrinkage=None)
            out["plain"] = (p.params.values[J], p.bse.values[J], np.inf)
            w1 = model.fit(**options, correction="small-sample", shrinkage=None)
            out["ss, s=1"] = (w1.params.values[J], w1.bse.values[J], w1.df_resid)
            h = smf.classical(formula, real=real, model=cell.model).fit(**options)
            out["human"] = (h.params.values[J], h.bse.values[J], h.df_resid)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            return None
        if options or pop[1] is None:
            return out
        hc0 = get_covariance("HC0", None, model.model_data)
        start, blocks = model._step_one()
        # plain two-step SE with population G or S
        b2 = p.params_full
        G2, S2 = model._jacobian(b2), hc0.s(model.moment_blocks(b2))
        W1 = p.weights
        out["plain, G pop"] = (b2[J], np.sqrt(np.diag(sandwich(g_pop, W1, S2, N))[J]), np.inf)
        out["plain, S pop"] = (b2[J], np.sqrt(np.diag(sandwich(G2, W1, s_pop, N))[J]), np.inf)
        out["plain, G,S pop"] = (b2[J], np.sqrt(np.diag(sandwich(g_pop, W1, s_pop, N))[J]), np.inf)
        # population weight matrix
        W_pop = np.linalg.inv(s_pop)
        bp = model._gauss_newton(start, W_pop, all_units_blocks=blocks)[0]
        Gp, Sp = model._jacobian(bp), hc0.s(model.moment_blocks(bp))
        out["pop W"] = (bp[J], np.sqrt(np.diag(sandwich(Gp, W_pop, Sp, N))[J]), np.inf)
        # iterated GMM
        b = b2
        for _ in range(20):
            W = weight_matrix(hc0.s(model.moment_blocks(b)))
            b_new = model._gauss_newton(b, W)[0]
            if np.max(np.abs(b_new - b)) < 1e-7:
                b = b_new
                break
            b = b_new
        Gi, Si = model._jacobian(b), hc0.s(model.moment_blocks(b))
        out["iterated"] = (b[J], np.sqrt(np.diag(np.linalg.inv(Gi.T @ np.linalg.solve(Si, Gi)))[J] / N), np.inf)
    return out


def summarize(results, label):
    truth = sss.COEFS
    names = [n for n in results[0] if n != "s"]
    est = {n: np.array([r[n][0] for r in results if n in r]) for n in names}
    human_mse = np.mean((est["human"] - truth) ** 2, axis=0)
    s = np.array([r["s"] for r in results])
    print(f"{label}: {len(results)} studies; mean s = {s.mean():.3f}, sd s = {s.std():.3f}")
    print("coverage Intercept x1 x2 (paired difference from human, its MC SE); x1: mean SE / SD, bias / SD, rel. MSE")
    covers = {}
    for n in names:
        rows = [r[n] for r in results if n in r]
        e = np.array([r[0] for r in rows]); se = np.array([r[1] for r in rows]); df = np.array([r[2] for r in rows])
        covers[n] = np.abs(e - truth) <= stats.t.ppf(0.975, df)[:, None] * se
    for n in names:
        c = covers[n].mean(axis=0)
        e = est[n]; se = np.array([r[n][1] for r in results if n in r])
        sd = e.std(axis=0, ddof=1)
        if len(covers[n]) == len(covers["human"]):
            diff = covers[n].astype(float) - covers["human"]
            dtxt = " ".join(f"{m:+.3f}({sdv:.3f})" for m, sdv in zip(diff.mean(0), diff.std(0) / np.sqrt(len(diff))))
        else:
            dtxt = "--"
        print(f"| {n} | {' '.join(f'{x:.3f}' for x in c)} | {dtxt} | {se.mean(0)[1] / sd[1]:.3f} | "
              f"{(e.mean(0)[1] - truth[1]) / sd[1]:+.3f} | {np.mean((e[:, 1] - truth[1]) ** 2) / human_mse[1]:.3f} |")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--cell", default="logit n=100 useful")
    parser.add_argument("--studies", type=int, default=600)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--fixed-s", type=float, default=None, help="add the default with the Stein factor fixed at this value")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--basic", action="store_true", help="default, plain and human-only fits only")
    args = parser.parse_args(argv)
    cell = [c for c in sss.cells() if c.label == args.cell][0]
    pop = population(cell) if cell.design != "cluster" and not args.basic else (None, None, None)
    if pop[1] is not None:
        v = np.linalg.inv(pop[2].T @ np.linalg.solve(pop[1], pop[2])) / sss.N_UNITS
        print(f"asymptotic SD of x1 (population G, S): {np.sqrt(v[1, 1]):.4f}")
    results = [r for r in (one(cell, seed, pop, args.fixed_s) for seed in range(args.first_seed, args.first_seed + args.studies)) if r is not None]
    if args.save:
        import pickle
        args.save.write_bytes(pickle.dumps(results))
    summarize(results, args.cell)
    if len(results) > 150 and args.first_seed == 0:
        summarize(results[:150], args.cell + " (first 150 seeds)")


if __name__ == "__main__":
    main()
