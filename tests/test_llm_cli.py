"""``synthinfer annotate`` and ``synthinfer synthesize`` against the fake server, and ``fit`` on their files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openai")

from _llm_support import API_KEY, PROMPT, SCHEMA, closed_port, features, make_units, ref  # noqa: E402

from synthinfer.cli import main  # noqa: E402
from synthinfer.llm.testing import FakeLLMServer  # noqa: E402

FEATURIZE = f"{Path(__file__).with_name('_llm_support.py')}:features"
GEN = "Here is a request: <request>{text}</request> Write a new one that is {category}."


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("SYNTHINFER_TEST_KEY", API_KEY)
    with FakeLLMServer(api_key=API_KEY) as srv:
        yield srv


def llm_args(server) -> list[str]:
    return ["--model", "fake-model", "--base-url", server.url, "--api-key-env", "SYNTHINFER_TEST_KEY",
            "--timeout", "2", "--no-progress", "--max-retries", "1"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def units_file(tmp_path) -> Path:
    path = tmp_path / "units.csv"
    make_units(30).to_csv(path)
    return path


def test_annotate_writes_the_proxy_file_and_reruns_from_the_cache(server, units_file, tmp_path, capsys):
    out = tmp_path / "proxy.csv"
    argv = ["annotate", units_file, "--output", out, "--prompt", PROMPT, "--schema", json.dumps(SCHEMA),
            "--featurize", FEATURIZE, "--price", "2.5,10", *llm_args(server)]
    code, stdout, stderr = run(capsys, *argv)
    assert code == 0, stderr
    assert "annotate: 30 row(s) for 30 unit(s)" in stdout and "30 request(s) sent, 0 from the cache" in stdout
    assert "$0.0" in stdout
    proxy = pd.read_csv(out, index_col="unit")
    assert list(proxy.columns) == ["polite", "confidence", "n_words", "please", "hedging"] and len(proxy) == 30
    prov = json.loads(Path(str(out) + ".provenance.json").read_text())
    assert prov["prompt"]["user"] == PROMPT and prov["counts"]["requests"] == 30
    assert Path(str(out) + ".cache.sqlite").is_file()
    code, stdout, _ = run(capsys, *argv)
    assert code == 0 and "0 request(s) sent, 30 from the cache" in stdout
    assert server.stats.requests == 30


def test_synthesize_then_fit(server, units_file, tmp_path, capsys):
    proxy, synth, real = tmp_path / "proxy.csv", tmp_path / "synth.parquet", tmp_path / "real.csv"
    code, _, stderr = run(capsys, "annotate", units_file, "--output", proxy, "--prompt", "@" + str(_write(tmp_path / "p.txt", PROMPT)),
                          "--schema", "@" + str(_write(tmp_path / "s.json", json.dumps(SCHEMA))), "--featurize", FEATURIZE,
                          *llm_args(server))
    assert code == 0, stderr
    code, stdout, stderr = run(capsys, "synthesize", units_file, "--output", synth, "--prompt", GEN, "--k", 2,
                               "--categories", "polite=1,impolite=0", "--outcome", "polite", "--featurize", FEATURIZE,
                               *llm_args(server))
    assert code == 0, stderr
    assert "synthesize: 60 row(s) for 30 unit(s)" in stdout
    frame = pd.read_parquet(synth)
    assert list(frame["polite"]) == [1, 0] * 30 and frame.index.name == "unit"
    units = make_units(30)
    rng = np.random.default_rng(0)
    labeled = units.iloc[np.sort(rng.choice(30, 20, replace=False))]
    pd.DataFrame([features(t) for t in labeled["text"]], index=labeled.index).assign(
        polite=rng.integers(0, 2, 20).astype(float)).to_csv(real)
    code, stdout, stderr = run(capsys, "fit", "polite ~ n_words", "--real", real, "--proxy", proxy, "--synth", synth,
                               "--output", "json")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["nobs"] == 30 and result["n_labeled"] == 20 and len(result["sources"]) == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_errors_are_one_line_and_exit_2(server, units_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.csv"
    base = ["annotate", units_file, "--output", out, "--schema", json.dumps(SCHEMA)]
    cases = [
        ([*base, "--prompt", PROMPT + " {polite}", *llm_args(server)], "never see the human labels"),
        ([*base, "--prompt", PROMPT, *llm_args(server), "--api-key-env", "NO_SUCH_VAR"], "no API key"),
        ([*base, "--prompt", PROMPT, *llm_args(server)[:3], f"http://127.0.0.1:{closed_port()}/v1",
          *llm_args(server)[4:]], "cannot reach the endpoint"),
        (["annotate", units_file, "--output", tmp_path / "o.txt", "--prompt", PROMPT, "--schema", "{}",
          *llm_args(server)], "use a .csv"),
        ([*base[:-1], "{not json", "--prompt", PROMPT, *llm_args(server)], "--schema is not valid JSON"),
        ([*base, "--prompt", "@missing.txt", *llm_args(server)], "--prompt file 'missing.txt' does not exist"),
        (["synthesize", units_file, "--output", out, "--prompt", GEN, "--k", 0, "--categories", "polite=1",
          "--outcome", "polite", "--featurize", FEATURIZE, *llm_args(server)], "k (samples per unit) must be >= 1"),
        (["synthesize", units_file, "--output", out, "--prompt", GEN, "--k", 1, "--categories", "polite",
          "--outcome", "polite", "--featurize", FEATURIZE, *llm_args(server)], "--categories must be NAME=VALUE"),
        (["synthesize", units_file, "--output", out, "--prompt", GEN, "--k", 1, "--categories", "polite=1",
          "--outcome", "polite", "--featurize", "nowhere.py:f", *llm_args(server)], "file 'nowhere.py' does not exist"),
    ]
    for argv, message in cases:
        code, stdout, stderr = run(capsys, *argv)
        assert code == 2, (argv, stderr)
        assert stderr.strip().splitlines()[-1].startswith("synthinfer: error: ") and message in stderr, stderr
    assert server.stats.posts == 0 and not out.exists()
    # a unit that keeps failing: named on one line, nothing written, the rest cached
    server.inject("garbage", match=ref("u005"))
    code, _, stderr = run(capsys, *base, "--prompt", PROMPT, *llm_args(server))
    assert code == 2 and "1 unit(s) ['u005'] failed" in stderr and not out.exists()
    server.clear_faults()
    server.reset_stats()
    code, stdout, stderr = run(capsys, *base, "--prompt", PROMPT, *llm_args(server), "--max-reasks", 3)
    assert code == 0, stderr
    assert server.stats.requests == 1 and "29 from the cache" not in stdout  # u005's 3 cached answers replayed too
    assert "1 request(s) sent, 32 from the cache" in stdout
