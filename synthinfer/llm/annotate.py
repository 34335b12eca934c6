"""The proxy frame: an LLM's annotation of every unit, one prompt for all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import LLMUnitsFailedError, SpecificationError, describe_units
from .cache import ResponseCache
from .client import LLMClient
from .parse import OutputSchema, ParseError, Parsed
from .prompts import Prompt, as_prompt
from .provenance import ATTRS_KEY, build_provenance, function_name, now_utc
from .runner import RunOptions, Session, UnitFailure, run_jobs
from .units import as_cache, check_featurize, checked_units, featurize_one

__all__ = ["annotate", "ask_json", "response_format_param", "RESPONSE_FORMATS"]

RESPONSE_FORMATS = ("json_schema", "json_object", "text")


def response_format_param(mode: str, schema: OutputSchema, name: str = "annotation") -> dict[str, Any]:
    """The ``response_format`` request parameter for ``mode`` (empty for ``"text"``)."""
    if mode == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": schema.json_schema(), "strict": True}}}
    if mode == "json_object":
        return {"response_format": {"type": "json_object"}}
    if mode == "text":
        return {}
    raise SpecificationError(f"response_format must be one of {RESPONSE_FORMATS}, got {mode!r}")


def _reask(messages: list[dict], said: str, reason: str, schema: OutputSchema) -> list[dict]:
    return messages + [
        {"role": "assistant", "content": said},
        {"role": "user", "content": f"I could not use your answer ({reason}). Answer again with only a JSON object "
                                    f"with the fields {schema.names}."},
    ]


async def ask_json(session: Session, messages: list[dict], params: Mapping[str, Any], sample: int,
                   schema: OutputSchema) -> Parsed:
    """Ask, parse, and re-ask (at most ``max_reasks`` times) until the answer fits ``schema``."""
    reason = ""
    for attempt in range(session.options.max_reasks + 1):
        if attempt:
            session.counts.reasks += 1
        answer = await session.complete(messages, params, sample)
        if answer.refusal:
            session.counts.refusals += 1
            reason = f"the model refused: {answer.refusal}"
            messages = _reask(messages, answer.refusal, "you refused", schema)
            continue
        try:
            parsed = schema.parse(answer.content)
        except ParseError as exc:
            reason = str(exc)
            messages = _reask(messages, answer.content or "", reason, schema)
            continue
        if parsed.method == "json":
            session.counts.parsed_json += 1
        else:
            session.counts.parsed_regex += 1
        return parsed
    raise UnitFailure(f"no usable answer after {session.options.max_reasks} re-ask(s): {reason}")


def _frame(rows: Mapping[Any, dict], index: pd.Index, columns: list[str], schema: OutputSchema) -> pd.DataFrame:
    """The rows of the units that succeeded, in the order of ``index``."""
    kept = [u for u in index if u in rows]
    frame = pd.DataFrame([rows[u] for u in kept], index=pd.Index(kept, name=index.name, dtype=index.dtype), columns=columns)
    return schema.cast(frame)


def annotate(
    units: pd.DataFrame,
    *,
    text: str = "text",
    prompt: Prompt | str,
    client: LLMClient,
    output: Mapping[str, Any] | OutputSchema,
    outcome: str | None = None,
    protected: Iterable[str] = (),
    featurize: Callable[[str], Any] | None = None,
    params: Mapping[str, Any] | None = None,
    response_format: str = "json_schema",
    cache: str | Path | ResponseCache | None = None,
    seed: int | None = 0,
    concurrency: int = 8,
    rate_limit: float | None = None,
    max_retries: int = 4,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
    max_reasks: int = 2,
    price: tuple[float, float] | Mapping[str, tuple[float, float]] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Annotate every unit with an LLM: the proxy frame.

    Every unit gets the same prompt, model and parameters; the prompt sees
    only the columns its template names, never the outcome.

    Parameters
    ----------
    units : DataFrame
        One row per unit, indexed by unit id (unique), with the text column
        and any other columns the template names. It must not carry the
        outcome (or a ``protected``) column. Not modified.
    text : str
        The text column (``{text}`` in the template, whatever its name).
    prompt : Prompt or str
        The template (a ``str`` is the user message). Its fields name columns
        of ``units``; naming the outcome is a `PromptLeakError`.
    client : LLMClient
        The endpoint and model.
    output : dict or OutputSchema
        The fields of the answer (a JSON schema of an object, or its
        properties), e.g. ``{"polite": {"type": "integer", "enum": [0, 1]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1}}``.
        Each field becomes a column of the result.
    outcome : str, optional
        The field that is the label (the regression's outcome); the first
        field of ``output`` if omitted.
    protected : iterable of str
        Other columns no template may name and ``units`` may not carry
        (e.g. the name of the human-label column in your files).
    featurize : callable, optional
        ``featurize(text) -> dict`` of covariates computed from each unit's
        text, added as columns (use the same function for synthetic texts).
    params : dict, optional
        Request parameters, the same for every unit (default
        ``{"temperature": 0.0}``), e.g. ``{"temperature": 0, "max_tokens": 50}``.
    response_format : {"json_schema", "json_object", "text"}
        How structured output is requested. ``"json_schema"`` sends the schema
        (strict); ``"json_object"`` asks for JSON mode; ``"text"`` asks
        nothing of the endpoint. The schema is also written into the system
        message, and answers are read as JSON with a regex fallback.
    cache : str, Path or ResponseCache, optional
        The SQLite cache file (None keeps answers in memory for this call
        only). A re-run with the same file sends only unanswered requests.
    seed : int, optional
        Seed of the random processing order.
    concurrency, rate_limit, max_retries, backoff, max_backoff, max_reasks, price, progress :
        How requests are sent; see `synthinfer.llm.runner.RunOptions`.

    Returns
    -------
    DataFrame
        Indexed like ``units`` (same ids, same order), one column per output
        field, then the ``featurize`` columns. ``frame.attrs["provenance"]``
        holds the model, prompt and its sha256, parameters, dates and counts.

    Raises
    ------
    PromptLeakError
        The template names the outcome, or ``units`` carries it.
    SpecificationError
        Bad input (duplicate unit ids, a unit without text, an unknown template
        field, ...), before anything is sent.
    LLMConnectionError
        The endpoint is unreachable, rejects the key or lacks the model (after
        one request).
    LLMUnitsFailedError
        Some units still failed after retries and re-asks; its ``failures``
        names them and why, its ``partial`` holds the other units' rows. Their
        answers are in the cache.
    """
    where = "annotate"
    schema = OutputSchema(output)
    outcome = schema.names[0] if outcome is None else outcome
    if outcome not in schema.names:
        raise SpecificationError(f"{where}: outcome {outcome!r} is not a field of output {schema.names}")
    protected = [str(p) for p in protected]
    forbidden = [outcome, *protected]
    units = checked_units(units, text, forbidden, where)
    template = as_prompt(prompt, where)
    template.check([*units.columns, "text"], forbidden, where)
    request_params = {"temperature": 0.0} if params is None else dict(params)
    request_params.update(response_format_param(response_format, schema))
    options = RunOptions(concurrency=concurrency, rate_limit=rate_limit, max_retries=max_retries, backoff=backoff,
                         max_backoff=max_backoff, max_reasks=max_reasks, progress=progress, price=price)
    feature_names: list[str] = []
    features: dict[Any, dict] = {}
    if featurize is not None:
        feature_names = check_featurize(featurize, units[text].iloc[0], schema.names, where)
        for unit, value in units[text].items():  # before anything is sent: a bug here costs nothing
            row = featurize_one(featurize, value, f"{where}: unit {unit!r}")
            if list(row) != feature_names:
                raise SpecificationError(f"{where}: featurize returned columns {list(row)} for unit {unit!r}, "
                                         f"but {feature_names} for the first unit")
            features[unit] = row

    fields = template.fields

    def job_for(unit: Any, row: pd.Series) -> Any:
        values = {name: row[text] if name == "text" else row[name] for name in fields}
        messages = template.render(values, schema.json_schema())

        async def job(session: Session) -> dict:
            parsed = await ask_json(session, messages, request_params, 0, schema)
            return parsed.values

        return job

    jobs = [(unit, job_for(unit, row)) for unit, row in units.iterrows()]
    store, opened = as_cache(cache)
    started = now_utc()
    try:
        results, failures, counts = run_jobs(client, store, options, jobs, seed=seed, desc="annotate")
    finally:
        if opened:
            store.close()
    rows = {u: {**values, **features.get(u, {})} for u, values in results.items()}
    frame = _frame(rows, units.index, [*schema.names, *feature_names], schema)
    frame.attrs[ATTRS_KEY] = build_provenance(
        task="annotate",
        client=client.describe(),
        prompt=template.to_dict(),
        output_schema=schema.json_schema(),
        outcome=outcome,
        text_column=text,
        featurize=function_name(featurize),
        parameters=request_params,
        response_format=response_format,
        run=options.to_dict(),
        processing_order_seed=seed,
        n_units=len(units),
        started=started,
        finished=now_utc(),
        counts=counts.to_dict(),
        failed_units={str(u): r for u, r in failures.items()},
        cache=None if store.path is None else str(store.path),
    )
    if failures:
        failed = [u for u in units.index if u in failures]
        raise LLMUnitsFailedError(
            f"{where}: {len(failed)} unit(s) {describe_units(failed)} failed after retries and re-asks "
            f"(first reason: {failures[failed[0]]}); the other {len(frame)} are in the cache"
            + (f" {store.path}" if store.path is not None else "")
            + "; every answer received is cached (unusable ones too), so fix the cause (or allow more "
            "max_reasks) and re-run with the same cache: only what is missing is sent",
            {u: failures[u] for u in failed},
            frame,
        )
    return frame

