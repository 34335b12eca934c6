"""Real data bundled with synthinfer.

- ``load_politeness``: 5,480 requests from the Stanford Politeness Corpus
  with a human politeness label and GPT-4o's label for every request; the
  worked example of the package (``synthinfer demo``).

Attribution: the Stanford Politeness Corpus (Danescu-Niculescu-Mizil, Sudhof,
Jurafsky, Leskovec and Potts, ACL 2013) is licensed CC BY 4.0. The prepared
file is from "Can Unconfident LLM Annotations Be Used for Confident
Conclusions?" (Gligoric, Zrnic, Lee, Candes and Jurafsky, NAACL 2025),
released with kristinagligoric/cdi-tutorial under the MIT licence, Copyright
(c) 2025 Kristina Gligoric. The licence texts ship with the data in
``synthinfer/datasets/data/`` (README.md and LICENSE).
"""

from .politeness import POLITENESS_ATTRIBUTION, Politeness, load_politeness

__all__ = ["load_politeness", "Politeness", "POLITENESS_ATTRIBUTION"]
