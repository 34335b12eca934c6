"""Size of the J test under valid designs, chi-square vs Hotelling F (docs/small-samples.md).

    python benchmarks/j_calibration.py                 # ~10 minutes on 2 cores
    python benchmarks/j_calibration.py --quick --output DIR
    python benchmarks/j_calibration.py --only "proxy$|three$" --studies 400 --output docs/results/j_calibration/sources
    python benchmarks/j_calibration.py --bootstrap 199 --only "n=(100|200) useful" --studies 400 --output docs/results/j_calibration/bootstrap

Cells of benchmarks/small_sample_study.py whose auxiliary data is generated
alike for every unit (so the overidentifying restrictions hold): OLS and
logit at n = 50, 100, 200, informative and pure-noise sources, 40 clusters,
and at n = 100, 200 a proxy only and three sources. Per study, the default fit's J with its chi-square p-value and with
the p-value it reports (chi-square for independent units, Hotelling's F on
(df, G - df) with clusters); the table gives the 5%-level rejection
rates with their Monte Carlo SE. Writes ``j.csv`` and ``j.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_sample_study import Cell, draw  # noqa: E402

import synthinfer.api as smf  # noqa: E402


def one(cell: Cell, seed: int, n_boot: int = 0) -> tuple[float, ...] | None:
    formula, real, proxies, synth, options = draw(cell, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = smf.gmm_synth(formula, real=real, proxy=proxies, synth=synth or None, model=cell.model).fit(**options)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            return None
        jval, p_reported, df = res.jtest()
        if not n_boot:
            return float(stats.chi2.sf(jval, df)), p_reported
        try:
            p_boot = res.bootstrap(n_boot, seed=seed).jtest()[1]
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            p_boot = np.nan
    return float(stats.chi2.sf(jval, df)), p_reported, p_boot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--bootstrap", type=int, default=0, metavar="B",
                        help="also the fast bootstrap's J p-value with B replicates (res.bootstrap(B).jtest())")
    parser.add_argument("--only", default=None, help="only the cells whose label matches this regular expression")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results" / "j_calibration")
    args = parser.parse_args(argv)
    cells = [Cell(m, n, aux) for m in ("ols", "logit") for aux in ("useful", "noise") for n in (50, 100, 200)]
    cells += [Cell(m, n, design="cluster") for m in ("ols", "logit") for n in (100, 200)]
    cells += [Cell(m, n, aux, sources=s) for m in ("ols", "logit") for s in ("proxy", "three")
              for aux in ("useful", "noise") for n in (100, 200)]
    if args.only:
        cells = [c for c in cells if re.search(args.only, c.label)]
    if args.quick:
        cells, args.studies, args.jobs = cells[:2], 5, 1
    from joblib import Parallel, delayed

    tasks = [(cell, seed) for cell in cells for seed in range(args.studies)]
    out = Parallel(n_jobs=args.jobs, batch_size=16)(delayed(one)(*t, args.bootstrap) for t in tasks)
    rows = []
    for cell in cells:
        p = np.array([o for t, o in zip(tasks, out) if t[0] == cell and o is not None])
        row = {
            "cell": cell.label, "studies": len(p), "failed": args.studies - len(p),
            "chi-square": float((p[:, 0] < 0.05).mean()), "reported": float((p[:, 1] < 0.05).mean()),
        }
        if args.bootstrap:
            boot = p[:, 2][np.isfinite(p[:, 2])]
            row.update({"bootstrap": float((boot < 0.05).mean()), "bootstrap_failed": int(len(p) - len(boot))})
        row["mc_se"] = float(np.sqrt(0.05 * 0.95 / len(p)))
        rows.append(row)
    table = pd.DataFrame(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "j.csv", index=False)
    boot_header = f" fast bootstrap (B = {args.bootstrap}) |" if args.bootstrap else ""
    lines = ["| cell | studies | chi-square | reported (F with clusters) |" + boot_header + " MC SE |",
             "|---|---|---|---|" + ("---|" if args.bootstrap else "") + "---|"]
    for r in table.to_dict("records"):
        boot = f" {r['bootstrap']:.3f} |" if args.bootstrap else ""
        lines.append(f"| {r['cell']} | {r['studies']} | {r['chi-square']:.3f} | {r['reported']:.3f} |{boot} {r['mc_se']:.3f} |")
    markdown = "Rejection rate of the J test at the 5% level under valid designs.\n\n" + "\n".join(lines) + "\n"
    (args.output / "j.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
