"""The bundled politeness data: content, layout, sampling and attribution."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
import synthinfer.datasets
from synthinfer.datasets import Politeness, load_politeness
from synthinfer.datasets.politeness import _prepare

N = 5480
DATA_DIR = resources.files("synthinfer.datasets").joinpath("data")


@pytest.fixture(scope="module")
def data() -> Politeness:
    return load_politeness()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    with DATA_DIR.joinpath("politeness_gpt4o.csv.gz").open("rb") as handle:
        return pd.read_csv(handle, compression="gzip")


def test_shipped_file_is_the_prepared_release_byte_for_byte() -> None:
    with DATA_DIR.joinpath("politeness_gpt4o.csv.gz").open("rb") as handle:
        content = gzip.decompress(handle.read())
    assert hashlib.md5(content).hexdigest() == "9808b68749a3b7e178fbac25c79a6666"


def test_attribution_ships_with_the_data() -> None:
    licence = DATA_DIR.joinpath("LICENSE").read_text(encoding="utf-8")
    readme = DATA_DIR.joinpath("README.md").read_text(encoding="utf-8")
    for text in (licence, readme, synthinfer.datasets.__doc__):
        assert "Stanford Politeness Corpus" in text
        assert "CC BY 4.0" in text
        assert "MIT licence" in text or "MIT License" in text
        assert "(c) 2025 Kristina Gligoric" in text
    assert "Permission is hereby granted" in licence


def test_frame_layout(data: Politeness) -> None:
    frame = data.frame
    assert frame.shape == (N, 25)
    assert frame.index.name == "unit"
    assert frame.index.is_unique
    assert frame.index[0] == "req00000" and frame.index[-1] == "req05479"
    features = [f"feature_{k}" for k in range(1, 22)]
    features[2], features[9] = "hedging", "first_person_plural"
    assert data.features == features
    assert list(frame.columns) == ["text", *features, "polite_human", "polite_gpt4o", "confidence_gpt4o"]
    assert frame[features].isin([0, 1]).all().all()
    assert frame["confidence_gpt4o"].between(0, 1).all()


def test_columns_match_the_source_file(data: Politeness, raw: pd.DataFrame) -> None:
    frame = data.frame
    np.testing.assert_array_equal(frame["hedging"], raw["Feature_3"])
    np.testing.assert_array_equal(frame["first_person_plural"], raw["Feature_10"])
    np.testing.assert_array_equal(frame["feature_21"], raw["Feature_21"])
    np.testing.assert_array_equal(frame["text"], raw["Text"])
    np.testing.assert_array_equal(frame["polite_human"], raw["Prediction_human"])
    np.testing.assert_array_equal(frame["polite_gpt4o"], (raw["Prediction_gpt-4o"] == "polite").astype(int))
    np.testing.assert_array_equal(frame["confidence_gpt4o"], raw["Confidence_gpt-4o"])


def test_first_person_plural_is_feature_10(data: Politeness) -> None:
    # independent of the file's column names: every such request says we/our/us
    texts = data.frame.loc[data.frame["first_person_plural"] == 1, "text"]
    assert len(texts) > 100
    assert texts.str.contains(r"\b(?:we|our|us)\b", case=False, regex=True).all()


def test_label_counts(data: Politeness) -> None:
    assert data.frame["polite_human"].value_counts().to_dict() == {0: 2740, 1: 2740}
    assert data.frame["polite_gpt4o"].value_counts().to_dict() == {1: 4030, 0: 1450}


def test_proxy_and_human_frames(data: Politeness) -> None:
    for frame, label in ((data.proxy, "polite_gpt4o"), (data.human, "polite_human")):
        assert list(frame.columns) == ["polite", *data.features]
        assert frame.index.equals(data.frame.index)
        np.testing.assert_array_equal(frame["polite"], data.frame[label])
        pd.testing.assert_frame_equal(frame[data.features], data.frame[data.features])


def test_sample_draws_a_reproducible_random_subset(data: Politeness) -> None:
    real, proxy = data.sample(300, seed=7)
    assert real.shape == (300, 22) and real.index.is_unique and real.index.is_monotonic_increasing
    assert real.index.isin(data.frame.index).all()
    pd.testing.assert_frame_equal(real, data.human.loc[real.index])
    pd.testing.assert_frame_equal(proxy, data.proxy)
    again, _ = data.sample(300, seed=7)
    other, _ = data.sample(300, seed=8)
    assert real.index.equals(again.index)
    assert not real.index.equals(other.index)
    generator, _ = data.sample(300, seed=np.random.default_rng(7))
    assert generator.index.equals(real.index)


def test_sample_is_a_simple_random_sample(data: Politeness) -> None:
    # every unit has the same chance n/N: the draws' unit positions look uniform
    positions = np.concatenate(
        [data.frame.index.get_indexer(data.sample(500, seed=s)[0].index) for s in range(20)]
    )
    counts = np.histogram(positions, bins=10, range=(0, N))[0]
    expected = len(positions) / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 27.9  # chi2(9) 0.999 quantile


def test_sample_bounds(data: Politeness) -> None:
    real, _ = data.sample(1, seed=0)
    assert len(real) == 1
    real, _ = data.sample(N, seed=0)
    assert real.index.equals(data.frame.index)
    for bad in (0, -3, N + 1):
        with pytest.raises(ValueError, match=r"n_labeled must be between 1 and 5480.*got"):
            data.sample(bad)
    for bad in (2.5, "300", True, None):
        with pytest.raises(TypeError, match="n_labeled must be an integer"):
            data.sample(bad)  # type: ignore[arg-type]
    real, _ = data.sample(np.int64(10), seed=0)
    assert len(real) == 10


def test_frames_are_not_shared(data: Politeness) -> None:
    real, proxy = data.sample(50, seed=1)
    real["polite"] = -1
    proxy["polite"] = -1
    assert data.human["polite"].isin([0, 1]).all()
    assert data.proxy["polite"].isin([0, 1]).all()
    fresh = load_politeness()
    fresh.frame.loc["req00000", "polite_human"] = 9
    assert load_politeness().frame.loc["req00000", "polite_human"] in (0, 1)


def test_unknown_gpt4o_label_raises(raw: pd.DataFrame) -> None:
    damaged = raw.copy()
    damaged.loc[5, "Prediction_gpt-4o"] = "neutral"
    with pytest.raises(ValueError, match=r"'polite' or 'impolite'.*'neutral'.*req00005"):
        _prepare(damaged)
    damaged = raw.copy()
    damaged.loc[3, "Prediction_human"] = 2
    with pytest.raises(ValueError, match=r"human label must be 0 or 1.*req00003"):
        _prepare(damaged)
    with pytest.raises(ValueError, match="lacks column"):
        _prepare(raw.drop(columns="Feature_10"))


def test_sample_feeds_the_estimators(data: Politeness) -> None:
    real, proxy = data.sample(400, seed=3)
    res = smf.gmm_proxy("polite ~ hedging + first_person_plural", real=real, proxy=proxy, model="logit").fit()
    assert res.converged
    assert list(res.params.index) == ["Intercept", "hedging", "first_person_plural"]
    assert res.nobs == N and res.n_labeled == 400
    truth = smf.classical(data.formula, real=data.human, model=data.model).fit()
    assert truth.n_labeled == N
    # the full-data hedging effect is clearly positive
    assert truth.conf_int().loc["hedging"].iloc[0] > 0


def test_reachable_from_the_top_level_package() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import synthinfer; print(synthinfer.datasets.load_politeness().n_units, "
         "synthinfer.simulate.simulate_study.__name__)"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5480", "simulate_study"]
