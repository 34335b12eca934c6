"""The synthetic frame: k generations per unit, each conditioned on that unit's text.

Sample ``j`` of every unit is made the same way: the same template, model
and parameters, with the request parameter ``seed`` set to ``seed + j``
(``params["seed"]``, default 0) and, with ``categories``, the ``j``-th
category (cycling). A sample's covariates come from the user's
``featurize(generated_text)``; its outcome from the requested category, from
an annotation prompt applied to the generated text, or from the generation
itself (a JSON answer with the text and the outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import LLMUnitsFailedError, SpecificationError, describe_units
from .annotate import ask_json, response_format_param
from .cache import ResponseCache
from .client import LLMClient
from .parse import OutputSchema
from .prompts import Prompt, as_prompt
from .provenance import ATTRS_KEY, build_provenance, function_name, now_utc
from .runner import RunOptions, Session, UnitFailure, run_jobs
from .units import as_cache, check_featurize, checked_units, featurize_one

__all__ = ["synthesize", "SAMPLE_COLUMN", "CATEGORY_COLUMN"]

SAMPLE_COLUMN = "sample"
CATEGORY_COLUMN = "category"


async def _ask_text(session: Session, messages: list[dict], params: Mapping[str, Any], sample: int) -> str:
    """A free-text generation; an empty answer or a refusal is asked again (bounded)."""
    reason = ""
    for attempt in range(session.options.max_reasks + 1):
        if attempt:
            session.counts.reasks += 1
        answer = await session.complete(messages, params, sample)
        if answer.refusal:
            session.counts.refusals += 1
            reason = f"the model refused: {answer.refusal}"
            said = answer.refusal
        elif answer.content is None or not answer.content.strip():
            reason = "the answer is empty"
            said = ""
        else:
            return answer.content.strip()
        messages = messages + [
            {"role": "assistant", "content": said},
            {"role": "user", "content": f"I could not use your answer ({reason}). Please answer the request above."},
        ]
    raise UnitFailure(f"no usable generation after {session.options.max_reasks} re-ask(s): {reason}")


def _positive_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise SpecificationError(f"synthesize: k (samples per unit) must be an integer >= 1, got {k!r}")
    if k < 1:
        raise SpecificationError(f"synthesize: k (samples per unit) must be >= 1, got {k}; every unit needs a sample")
    return k


def synthesize(
    units: pd.DataFrame,
    *,
    text: str = "text",
    prompt: Prompt | str,
    client: LLMClient,
    k: int,
    featurize: Callable[[str], Any],
    categories: Mapping[str, Any] | None = None,
    outcome: str | None = None,
    annotate: Prompt | str | None = None,
    output: Mapping[str, Any] | OutputSchema | None = None,
    protected: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
    annotate_params: Mapping[str, Any] | None = None,
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
    """Generate k synthetic samples per unit, each conditioned on that unit: the synthetic frame.

    Parameters
    ----------
    units : DataFrame
        One row per unit (all N units, labeled or not), indexed by unit id,
        with the text column. Must not carry the outcome. Not modified.
    text : str
        The text column (``{text}`` in the templates); also the name of the
        generated-text column of the result.
    prompt : Prompt or str
        The generation template, e.g. ``"Here is a request: <request>{text}</request>
        Write a new request on the same topic that is {category}."``. Fields
        name columns of ``units``, and ``{category}``.
    client : LLMClient
    k : int
        Samples per unit (>= 1), the same for every unit.
    featurize : callable
        ``featurize(text) -> dict`` of covariates, applied to each generated
        text: use the same function as for the real texts.
    categories : dict, optional
        Category description -> outcome value, e.g. ``{"polite": 1,
        "impolite": 0}``. Sample ``j`` of every unit asks for the ``j``-th
        category (cycling), never for one chosen from a human label; the value
        is the sample's outcome, in column ``outcome``.
    outcome : str, optional
        The outcome column's name: required with ``categories``; with
        ``output``, the first field if omitted.
    annotate : Prompt or str, optional
        An annotation template applied to each generated text (``{text}`` is
        the generated text; ``{category}`` the requested one); its answer,
        read with ``output``, gives the outcome (and any other fields).
    output : dict or OutputSchema, optional
        The answer's fields: of the annotation with ``annotate``, else of the
        generation itself, which must then carry a string field named ``text``
        (the generated text) besides the outcome.
    protected : iterable of str
        Other columns no template may name and ``units`` may not carry.
    params : dict, optional
        Generation request parameters (default ``{"temperature": 1.0}``); sample
        ``j`` is sent with ``seed = params.get("seed", 0) + j``.
    annotate_params : dict, optional
        Annotation request parameters (default ``{"temperature": 0.0}``).
    response_format : {"json_schema", "json_object", "text"}
        How structured output is requested (see `annotate`).
    cache, seed, concurrency, rate_limit, max_retries, backoff, max_backoff, max_reasks, price, progress :
        As in `annotate`; ``seed`` also orders the (unit, sample) jobs at random.

    Returns
    -------
    DataFrame
        ``k`` rows per unit, in the order of ``units`` then sample, indexed by
        the unit id each sample was conditioned on. Columns: ``sample`` (0 ..
        k-1), ``category`` (with ``categories``), the generated text, the
        outcome and any other answer fields, then the ``featurize`` columns.
        ``frame.attrs["provenance"]`` records how it was made.

    Raises
    ------
    PromptLeakError, SpecificationError, LLMConnectionError, LLMUnitsFailedError
        As in `annotate`; failures are keyed by ``(unit id, sample index)``.
    """
    where = "synthesize"
    k = _positive_k(k)
    schema = None if output is None else OutputSchema(output)
    if categories is not None:
        if not isinstance(categories, Mapping) or not categories:
            raise SpecificationError(f"{where}: categories must be a non-empty dict (description -> outcome value)")
        if outcome is None:
            raise SpecificationError(f"{where}: with categories, name the outcome column with outcome=")
    if annotate is not None and schema is None:
        raise SpecificationError(f"{where}: annotate= needs output= (the fields of the annotation)")
    if categories is None and schema is None:
        raise SpecificationError(
            f"{where}: no outcome for the samples; give categories= (the requested category is the outcome), "
            f"annotate= with output= (an annotation of each generated text), or output= (the generation answers "
            f"with the text and the outcome)"
        )
    if schema is not None and annotate is None:
        if text not in schema.properties or schema.properties[text]["type"] != "string":
            raise SpecificationError(
                f"{where}: without annotate=, output= describes the generation, so it needs a string field "
                f"{text!r} (the generated text); it has {schema.names}"
            )
    if outcome is None:
        candidates = [n for n in schema.names if n != text]  # type: ignore[union-attr]
        if not candidates:
            raise SpecificationError(f"{where}: output= has no field besides {text!r}, so the samples have no outcome")
        outcome = candidates[0]
    answer_fields = [] if schema is None else [n for n in schema.names if n != text or annotate is not None]
    if categories is not None and outcome in answer_fields:
        raise SpecificationError(f"{where}: outcome {outcome!r} is both the requested category and a field of output")
    if schema is not None and categories is None and outcome not in schema.names:
        raise SpecificationError(f"{where}: outcome {outcome!r} is not a field of output {schema.names}")
    protected = [str(p) for p in protected]
    forbidden = [outcome, *protected]
    units = checked_units(units, text, forbidden, where)
    generation = as_prompt(prompt, where)
    extra = [CATEGORY_COLUMN] if categories is not None else []
    generation.check([*units.columns, "text", *extra], forbidden, where)
    judge = None
    if annotate is not None:
        judge = as_prompt(annotate, f"{where} (annotate)")
        judge.check(["text", *extra], forbidden, f"{where} (annotate)")
    taken = [SAMPLE_COLUMN, CATEGORY_COLUMN, text, outcome, *answer_fields]
    feature_names = check_featurize(featurize, units[text].iloc[0], taken, where)

    gen_params = {"temperature": 1.0} if params is None else dict(params)
    base_seed = int(gen_params.pop("seed", 0))
    if schema is not None and annotate is None:
        gen_params.update(response_format_param(response_format, schema, "sample"))
    judge_params = {"temperature": 0.0} if annotate_params is None else dict(annotate_params)
    if judge is not None:
        judge_params.update(response_format_param(response_format, schema, "annotation"))  # type: ignore[arg-type]
    options = RunOptions(concurrency=concurrency, rate_limit=rate_limit, max_retries=max_retries, backoff=backoff,
                         max_backoff=max_backoff, max_reasks=max_reasks, progress=progress, price=price)
    cats = list(categories.items()) if categories is not None else []
    fields = generation.fields

    def job_for(unit: Any, row: pd.Series, j: int) -> Any:
        values = {name: row[text] if name == "text" else row[name] for name in fields if name != CATEGORY_COLUMN}
        entry: dict[str, Any] = {SAMPLE_COLUMN: j}
        if cats:
            description, value = cats[j % len(cats)]
            values[CATEGORY_COLUMN] = description
            entry[CATEGORY_COLUMN] = description
            entry[outcome] = value
        sample_params = {**gen_params, "seed": base_seed + j}
        generation_schema = schema.json_schema() if schema is not None and judge is None else None
        messages = generation.render(values, generation_schema)

        async def job(session: Session) -> dict:
            if generation_schema is not None:
                parsed = await ask_json(session, messages, sample_params, j, schema)  # type: ignore[arg-type]
                generated = str(parsed.values[text]).strip()
                entry.update({n: v for n, v in parsed.values.items() if n != text})
            else:
                generated = await _ask_text(session, messages, sample_params, j)
            try:
                covariates = featurize_one(featurize, generated, f"{where}: unit {unit!r}, sample {j}")
            except Exception as exc:  # the user's function on an LLM text: recorded, the rest goes on
                raise UnitFailure(f"featurize failed on the generated text ({type(exc).__name__}: {exc})") from exc
            if list(covariates) != feature_names:
                raise UnitFailure(f"featurize returned columns {list(covariates)}, not {feature_names}")
            if judge is not None:
                judge_values = {"text": generated}
                if cats:
                    judge_values[CATEGORY_COLUMN] = entry[CATEGORY_COLUMN]
                judged = await ask_json(session, judge.render(judge_values, schema.json_schema()),  # type: ignore[union-attr]
                                        judge_params, j, schema)  # type: ignore[arg-type]
                entry.update(judged.values)
            return {**entry, text: generated, **covariates}

        return job

    jobs = [((unit, j), job_for(unit, row, j)) for unit, row in units.iterrows() for j in range(k)]
    store, opened = as_cache(cache)
    started = now_utc()
    try:
        results, failures, counts = run_jobs(client, store, options, jobs, seed=seed, desc="synthesize")
    finally:
        if opened:
            store.close()
    columns = [SAMPLE_COLUMN, *([CATEGORY_COLUMN] if cats else []), text,
               *([outcome] if cats else []), *answer_fields, *feature_names]
    keys = [(u, j) for u in units.index for j in range(k) if (u, j) in results]
    frame = pd.DataFrame([results[key] for key in keys], columns=columns,
                         index=pd.Index([u for u, _ in keys], name=units.index.name, dtype=units.index.dtype))
    frame[SAMPLE_COLUMN] = frame[SAMPLE_COLUMN].astype("int64")
    if schema is not None:
        frame = schema.cast(frame)
    frame.attrs[ATTRS_KEY] = build_provenance(
        task="synthesize",
        client=client.describe(),
        prompt=generation.to_dict(),
        annotate_prompt=None if judge is None else judge.to_dict(),
        output_schema=None if schema is None else schema.json_schema(),
        categories=None if categories is None else {str(d): _jsonable(v) for d, v in categories.items()},
        outcome=outcome,
        k=k,
        text_column=text,
        featurize=function_name(featurize),
        parameters={**gen_params, "seed": f"{base_seed} + sample index"},
        annotate_parameters=None if judge is None else judge_params,
        response_format=response_format,
        run=options.to_dict(),
        processing_order_seed=seed,
        n_units=len(units),
        started=started,
        finished=now_utc(),
        counts=counts.to_dict(),
        failed_samples=[{"unit": str(u), "sample": j, "reason": r} for (u, j), r in failures.items()],
        cache=None if store.path is None else str(store.path),
    )
    if failures:
        failed = [(u, j) for u in units.index for j in range(k) if (u, j) in failures]
        failed_units = list(dict.fromkeys(u for u, _ in failed))
        raise LLMUnitsFailedError(
            f"{where}: {len(failed)} sample(s) of {len(failed_units)} unit(s) {describe_units(failed_units)} failed "
            f"after retries and re-asks (first: sample {failed[0][1]} of {failed[0][0]!r}: {failures[failed[0]]}); "
            f"the other {len(frame)} samples are in the cache"
            + (f" {store.path}" if store.path is not None else "")
            + "; every answer received is cached (unusable ones too), so fix the cause (or allow more "
            "max_reasks) and re-run with the same cache: only what is missing is sent",
            {key: failures[key] for key in failed},
            frame,
        )
    return frame


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
