"""``python -m synthinfer``: fit GMM-Synth on a simulated study and print the summary."""

from __future__ import annotations

import sys

from . import api
from .simulate import make_study


def main(argv: list[str] | None = None) -> int:
    study = make_study("logit", n_units=5000, n_labeled=300, aux="useful", seed=2025)
    human = api.gmm_synth(study.formula, real=study.real, model="logit").fit()
    res = api.gmm_synth(
        study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model="logit"
    ).fit()
    print(res.summary())
    print()
    print("True coefficients:", study.truth.to_dict())
    print("Standard error relative to the human-only fit:")
    print((res.bse / human.bse).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
