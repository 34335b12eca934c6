"""The blocked products and the fast inverse logit against direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import synthinfer.api as smf
from synthinfer.families import Logit
from synthinfer.families import expit as _expit
from synthinfer.rowblocks import ROWS_PER_BLOCK, scaled_rows_gram, weighted_gram
from synthinfer.simulate import make_study

# more rows than two blocks, and not a multiple of the block size: the blocked
# path and its short last block both run
N_BLOCKED = 2 * ROWS_PER_BLOCK + 1234


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [50, N_BLOCKED])
def test_weighted_gram_is_the_direct_product(n, order) -> None:
    rng = np.random.default_rng(1)
    X = np.asarray(rng.normal(size=(n, 4)), order=order)
    w = rng.random(n)
    np.testing.assert_allclose(weighted_gram(X, w), X.T @ (X * w[:, None]), rtol=1e-12)


@pytest.mark.parametrize("n", [50, N_BLOCKED])
def test_scaled_rows_gram_stacks_scaled_and_plain_parts(n) -> None:
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(n, 3)), np.asfortranarray(rng.normal(size=(n, 2)))
    r = rng.normal(size=n)
    Z = np.hstack([A * r[:, None], B])
    np.testing.assert_allclose(scaled_rows_gram([(A, r), (B, None)]), Z.T @ Z, rtol=1e-12, atol=1e-9)


def test_fast_inverse_logit_matches_scipy_in_both_tails() -> None:
    lin = np.concatenate([np.linspace(-40, 40, 100_001), [-800.0, -745.0, 0.0, 745.0, 800.0]])
    ours = _expit(lin)
    assert np.all(np.isfinite(ours)) and ours[-5] == 0.0 and ours[-1] == 1.0
    # relative accuracy, including far into the lower tail where mu ~ 1e-18
    np.testing.assert_allclose(ours, expit(lin), rtol=4 * np.finfo(float).eps, atol=0)
    mu, dmu = Logit().mean_and_deriv(lin)
    # mu (1 - mu), as statsmodels computes it: 1 - mu cancels in the upper tail,
    # so the weight is exact to an absolute, not a relative, rounding error
    np.testing.assert_allclose(dmu, expit(lin) * expit(-lin), rtol=1e-12, atol=2 * np.finfo(float).eps)


@pytest.mark.parametrize("k_synth", [1, 2])
@pytest.mark.parametrize("model", ["ols", "logit"])
def test_blocked_s_equals_the_covariance_of_the_moment_matrix(model, k_synth) -> None:
    """Enough units that S's all-units products run block by block.

    With one synthetic sample per unit both sources' blocks are kept as factors;
    with two, the synthetic block is averaged per unit first and mixed in.
    """
    study = make_study(model, n_units=N_BLOCKED, n_labeled=400, aux="useful", k_synth=k_synth, seed=5)
    res = smf.gmm_synth(
        study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model
    ).fit()
    mod = res.model
    moments = mod.momcond(res.params_full)
    expected = np.cov(moments, rowvar=False, ddof=0)
    np.testing.assert_allclose(res.moment_covariance, expected, rtol=1e-9, atol=1e-13)
