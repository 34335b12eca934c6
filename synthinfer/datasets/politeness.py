"""The politeness data: 5,480 requests with human and GPT-4o politeness labels.

Data: the Stanford Politeness Corpus (Danescu-Niculescu-Mizil, Sudhof,
Jurafsky, Leskovec and Potts, ACL 2013; CC BY 4.0), as prepared for "Can
Unconfident LLM Annotations Be Used for Confident Conclusions?" (Gligoric,
Zrnic, Lee, Candes and Jurafsky, NAACL 2025) and released with the tutorial
repository kristinagligoric/cdi-tutorial (MIT licence, Copyright (c) 2025
Kristina Gligoric). See ``synthinfer/datasets/data/README.md`` and ``LICENSE``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["Politeness", "load_politeness", "POLITENESS_ATTRIBUTION"]

POLITENESS_ATTRIBUTION = (
    "Stanford Politeness Corpus (Danescu-Niculescu-Mizil et al., ACL 2013; CC BY 4.0), "
    "as prepared by Gligoric et al. (NAACL 2025; kristinagligoric/cdi-tutorial, "
    "MIT licence, (c) 2025 Kristina Gligoric)"
)

_FILE = "politeness_gpt4o.csv.gz"
_N_REQUESTS = 5480
_N_FEATURES = 21
_RENAMED = {3: "hedging", 10: "first_person_plural"}
_GPT4O_LABELS = {"polite": 1, "impolite": 0}


def _feature_name(k: int) -> str:
    return _RENAMED.get(k, f"feature_{k}")


FEATURES: list[str] = [_feature_name(k) for k in range(1, _N_FEATURES + 1)]


@dataclass(frozen=True, eq=False, repr=False)
class Politeness:
    """The politeness data in the package's real / proxy layout.

    Every frame is indexed by ``unit``, a stable request id (``"req00000"`` ...
    ``"req05479"``, in the order of the source file).

    Attributes
    ----------
    frame : DataFrame
        All 5,480 requests. Columns: ``text``; the 21 rule-based binary
        politeness features (``hedging`` is the source's Feature_3,
        ``first_person_plural`` its Feature_10, the others ``feature_1`` ...
        ``feature_21``); ``polite_human`` (0/1, the human label);
        ``polite_gpt4o`` (0/1, GPT-4o's label) and ``confidence_gpt4o``
        (GPT-4o's stated confidence, 0..1).
    proxy : DataFrame
        Every request: outcome ``polite`` = GPT-4o's label, plus the 21
        features. Pass it as ``proxy=``.
    human : DataFrame
        Every request: outcome ``polite`` = the human label, plus the 21
        features. Fitting on it gives the full-data ground truth.
    formula : str
        The worked example's regression, ``"polite ~ hedging + first_person_plural"``.
    model : str
        The worked example's model family, ``"logit"``.

    See Also
    --------
    load_politeness : build this object.

    Notes
    -----
    Every request carries a human label, so any labeled subset can be drawn
    with ``sample`` and compared with the full-data fit on ``human``.
    The data has an LLM proxy but no synthetic samples.
    """

    frame: pd.DataFrame
    proxy: pd.DataFrame
    human: pd.DataFrame
    formula: str = "polite ~ hedging + first_person_plural"
    model: str = "logit"

    @property
    def n_units(self) -> int:
        """Number of requests (5,480)."""
        return len(self.frame)

    @property
    def features(self) -> list[str]:
        """The names of the 21 feature columns, in file order."""
        return list(FEATURES)

    def sample(
        self, n_labeled: int, seed: int | np.random.Generator | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Draw a simple random subset of requests as the human-labeled data.

        Parameters
        ----------
        n_labeled : int
            Number of labeled requests, ``1 <= n_labeled <= 5480``.
        seed : int, numpy Generator or None
            Seed of the draw (``numpy.random.default_rng(seed)``); the same
            seed gives the same subset. None draws a fresh subset.

        Returns
        -------
        real : DataFrame
            The ``n_labeled`` drawn requests (in unit order) with ``polite`` =
            the human label and the features.
        proxy : DataFrame
            A copy of ``proxy``: every request with GPT-4o's label.

        Raises
        ------
        TypeError
            If ``n_labeled`` is not an integer.
        ValueError
            If ``n_labeled`` is outside ``1 .. 5480``.

        Examples
        --------
        >>> import synthinfer.api as smf
        >>> from synthinfer.datasets import load_politeness
        >>> data = load_politeness()
        >>> real, proxy = data.sample(300, seed=0)
        >>> res = smf.gmm_proxy(data.formula, real=real, proxy=proxy, model="logit").fit()
        """
        if isinstance(n_labeled, bool) or not isinstance(n_labeled, numbers.Integral):
            raise TypeError(f"n_labeled must be an integer, got {n_labeled!r}")
        n_units = self.n_units
        if not 1 <= n_labeled <= n_units:
            raise ValueError(
                f"n_labeled must be between 1 and {n_units} (the number of requests), "
                f"got {n_labeled}"
            )
        rng = np.random.default_rng(seed)
        labeled = np.sort(rng.choice(n_units, size=int(n_labeled), replace=False))
        return self.human.iloc[labeled].copy(), self.proxy.copy()

    def __repr__(self) -> str:
        return (
            f"<Politeness: {self.n_units} requests, human and GPT-4o labels, "
            f"{len(self.features)} features; formula {self.formula!r}>"
        )


@lru_cache(maxsize=1)
def _read_raw() -> pd.DataFrame:
    # binary handle: pandas keeps the line breaks inside quoted texts as they are
    with resources.files(__package__).joinpath("data").joinpath(_FILE).open("rb") as handle:
        return pd.read_csv(handle, compression="gzip", encoding="utf-8")


def _prepare(raw: pd.DataFrame) -> Politeness:
    """Validate the source file's columns and values and build ``Politeness``."""
    source_features = [f"Feature_{k}" for k in range(1, _N_FEATURES + 1)]
    expected = [*source_features, "Prediction_human", "Text", "Confidence_gpt-4o", "Prediction_gpt-4o"]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise ValueError(f"the politeness data file lacks column(s) {missing}")
    units = pd.Index([f"req{i:05d}" for i in range(len(raw))], name="unit")

    gpt4o = raw["Prediction_gpt-4o"]
    unknown = ~gpt4o.isin(list(_GPT4O_LABELS))
    if unknown.any():
        raise ValueError(
            f"the politeness data's GPT-4o label must be 'polite' or 'impolite', but it is "
            f"{sorted(map(repr, gpt4o[unknown].unique()))} for unit(s) {list(units[unknown.to_numpy()][:10])}"
        )
    human = raw["Prediction_human"]
    if not human.isin([0, 1]).all():
        bad = ~human.isin([0, 1])
        raise ValueError(
            f"the politeness data's human label must be 0 or 1, but it is "
            f"{sorted(map(repr, human[bad].unique()))} for unit(s) {list(units[bad.to_numpy()][:10])}"
        )
    features = raw[source_features].copy()
    if not features.isin([0, 1]).all().all():
        bad_columns = [c for c in source_features if not features[c].isin([0, 1]).all()]
        raise ValueError(f"the politeness data's features {bad_columns} are not all 0/1")
    features.columns = FEATURES
    features.index = units

    frame = pd.DataFrame({"text": raw["Text"].to_numpy()}, index=units)
    frame = frame.join(features)
    frame["polite_human"] = human.to_numpy().astype(np.int64)
    frame["polite_gpt4o"] = gpt4o.map(_GPT4O_LABELS).to_numpy().astype(np.int64)
    frame["confidence_gpt4o"] = raw["Confidence_gpt-4o"].to_numpy().astype(float)

    proxy = pd.concat([frame["polite_gpt4o"].rename("polite"), features], axis=1)
    human_frame = pd.concat([frame["polite_human"].rename("polite"), features], axis=1)
    return Politeness(frame=frame, proxy=proxy, human=human_frame)


def load_politeness() -> Politeness:
    """Load the bundled politeness data (5,480 requests, human and GPT-4o labels).

    The data ships inside the package (no download). Each call returns new
    frames, so changing them does not affect later calls.

    Returns
    -------
    Politeness
        ``.frame`` (everything), ``.proxy`` (GPT-4o's label as ``polite``),
        ``.human`` (the human label as ``polite``) and ``.sample(n_labeled,
        seed)`` to draw a labeled subset.

    Raises
    ------
    ValueError
        If the bundled file is damaged: a column is missing, or a label takes a
        value other than 0/1 (human) or "polite"/"impolite" (GPT-4o).

    Notes
    -----
    Stanford Politeness Corpus (Danescu-Niculescu-Mizil, Sudhof, Jurafsky,
    Leskovec and Potts, ACL 2013), licensed CC BY 4.0; as prepared by
    Gligoric, Zrnic, Lee, Candes and Jurafsky ("Can Unconfident LLM
    Annotations Be Used for Confident Conclusions?", NAACL 2025) and released
    with kristinagligoric/cdi-tutorial under the MIT licence, Copyright (c)
    2025 Kristina Gligoric. The file is shipped unchanged (gzip-compressed);
    the loader adds unit ids, renames columns and recodes GPT-4o's label to 0/1.

    Examples
    --------
    >>> from synthinfer.datasets import load_politeness
    >>> data = load_politeness()
    >>> data.frame.shape
    (5480, 25)
    >>> real, proxy = data.sample(300, seed=1)
    >>> len(real), len(proxy)
    (300, 5480)
    """
    return _prepare(_read_raw().copy())
