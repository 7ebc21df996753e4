"""The LLM-span conventions: which attributes each requires, and how a received span is classified.

`REQUIRED_ATTRIBUTES` is plain data for a user to read and change (or override per
convention through `CollectorConfig.required_attributes`). An entry "a|b" is met by
either attribute, for renamed attributes.

A span is an **LLM span** when
  - it carries `openinference.span.kind`, and that is "LLM" (the kind decides: an
    OpenInference CHAIN or TOOL span is not an LLM span whatever else it carries); or
  - any attribute key starts with `gen_ai.` or `llm.`, or with `langfuse.observation.model.`
    (Langfuse writes a model only on its generation-like observations); or
  - its name contains "chat", "messages" or "completion" (any case) and it is not an
    HTTP client span (no `http.method` / `http.request.method`): an httpx span named
    "POST /v1/chat/completions" is transport, not the LLM call.
The root span of an operation (`loadgen.operation`) is never an LLM span.

An LLM span's **convention**: HoneyHive when a span or resource attribute key starts with
`honeyhive.` or `honeyhive_` (its span processor stamps every span); otherwise
Langfuse when it carries `langfuse.observation.type` (every Langfuse observation does);
OpenInference when it carries `openinference.span.kind`; otherwise Laminar when it carries
`lmnr.span.type`; otherwise MLflow when it carries `mlflow.spanType`; otherwise OTel GenAI.
HoneyHive wraps other instrumentors, so a HoneyHive LLM span must carry HoneyHive's list
*and* the list of the convention its instrumentor follows (OpenInference, HoneyHive's
default, or OTel GenAI for OpenLLMetry's instrumentors).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

# The convention names are shared with the arm registry (an arm names its LLM spans'
# convention); re-exported here for this module's readers.
from loadgen.span_names import HONEYHIVE, LANGFUSE, LMNR, MLFLOW, OPENINFERENCE, OTEL_GENAI, over_honeyhive

REQUIRED_ATTRIBUTES: dict[str, list[str]] = {
    # OpenTelemetry semantic conventions for GenAI spans (status: Development). Semconv
    # 1.37 renamed gen_ai.system to gen_ai.provider.name; instrumentations on <= 1.36
    # still emit the old name, so either one satisfies the entry.
    OTEL_GENAI: [
        "gen_ai.operation.name",
        "gen_ai.provider.name|gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    ],
    # OpenInference (Arize) semantic conventions, spec/semantic_conventions.md: the span
    # kind is required on every span; model, token counts and input/output on LLM spans.
    OPENINFERENCE: [
        "openinference.span.kind",
        "llm.model_name",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "input.value",
        "output.value",
    ],
    # A starting point: what HoneyHive's own span processor adds (honeyhive 1.7,
    # tracer/processing/span_processor.py, on_start) once the tracer has a session and a
    # project. It also stamps honeyhive.source, honeyhive_event_type ("model" for an
    # OpenInference LLM span) and traceloop.association.properties.{session_id,project}.
    # Checked together with the instrumentor's own list (see the module docstring).
    HONEYHIVE: [
        "honeyhive.session_id",
        "honeyhive.project",
    ],
    # Langfuse's own observation attributes (langfuse 5.0, _client/attributes.py,
    # create_generation_attributes), as its OpenAI integration writes them on a
    # "generation": the type, the model, the usage and the input and output.
    LANGFUSE: [
        "langfuse.observation.type",
        "langfuse.observation.model.name",
        "langfuse.observation.usage_details",
        "langfuse.observation.input",
        "langfuse.observation.output",
    ],
    # Laminar (lmnr 0.8): its LaminarSpanProcessor stamps lmnr.span.* on every span, and its
    # copies of OpenLLMetry's instrumentors write GenAI attributes from before semconv 1.37
    # (gen_ai.system, no gen_ai.operation.name). Laminar's backend shows an LLM span from
    # lmnr.span.type "LLM", the model and the token counts; lmnr.span.path places it.
    LMNR: [
        "lmnr.span.type",
        "lmnr.span.path",
        "gen_ai.provider.name|gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    ],
    # MLflow tracing (mlflow-tracing 3.17, autolog, without MLFLOW_ENABLE_OTEL_GENAI_SEMCONV):
    # every value is JSON text. What MLflow's trace UI reads for a chat span: its type, its
    # trace, inputs and outputs, the model and the token usage.
    MLFLOW: [
        "mlflow.spanType",
        "mlflow.traceRequestId",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "mlflow.llm.model",
        "mlflow.chat.tokenUsage",
    ],
}

OI_KIND_KEY = "openinference.span.kind"
HONEYHIVE_PREFIXES = ("honeyhive.", "honeyhive_")
LANGFUSE_TYPE_KEY = "langfuse.observation.type"
LMNR_TYPE_KEY = "lmnr.span.type"
MLFLOW_TYPE_KEY = "mlflow.spanType"
_LLM_KEY_PREFIXES = ("gen_ai.", "llm.", "langfuse.observation.model.")
_LLM_NAME_WORDS = ("chat", "messages", "completion")
_HTTP_METHOD_KEYS = frozenset({"http.method", "http.request.method"})

_HONEYHIVE_OVER = {inner: over_honeyhive(inner) for inner in (OPENINFERENCE, OTEL_GENAI)}

# One requirement: (its name as written in the data, the attributes that meet it).
Requirement = tuple[str, frozenset[str]]


def compile_required(required: Mapping[str, list[str]]) -> dict[str, tuple[Requirement, ...]]:
    """The required sets in the form the ingest loop checks: alternatives split once, up front.

    A HoneyHive span's set is HoneyHive's own entries followed by its instrumentor's, so
    the checked sets are keyed by (convention, inner convention) as "honeyhive" +
    "/openinference" or "/otel_genai".
    """
    own = {
        name: tuple((entry, frozenset(part.strip() for part in entry.split("|"))) for entry in entries)
        for name, entries in required.items()
    }
    compiled = dict(own)
    for inner, key in _HONEYHIVE_OVER.items():
        compiled[key] = own.get(HONEYHIVE, ()) + own.get(inner, ())
    return compiled


def is_llm_span(name: str, keys: Collection[str], oi_kind: str | None) -> bool:
    """Whether a span that is not a root span is an LLM span; `oi_kind` is its openinference.span.kind."""
    if oi_kind is not None:
        return oi_kind == "LLM"
    for key in keys:
        if key.startswith(_LLM_KEY_PREFIXES):
            return True
    lowered = name.lower()
    return any(word in lowered for word in _LLM_NAME_WORDS) and _HTTP_METHOD_KEYS.isdisjoint(keys)


def convention_of(keys: Collection[str], honeyhive_resource: bool) -> str:
    """The key into `compile_required`'s result for an LLM span with these attribute keys."""
    inner = OPENINFERENCE if OI_KIND_KEY in keys else OTEL_GENAI
    if honeyhive_resource:
        return _HONEYHIVE_OVER[inner]
    for key in keys:  # a plain loop: any() over a generator costs twice as much per span
        if key.startswith(HONEYHIVE_PREFIXES):
            return _HONEYHIVE_OVER[inner]
    if LANGFUSE_TYPE_KEY in keys:
        return LANGFUSE
    if inner == OTEL_GENAI:
        if LMNR_TYPE_KEY in keys:
            return LMNR
        if MLFLOW_TYPE_KEY in keys:
            return MLFLOW
    return inner


def missing_attributes(keys: Collection[str], required: tuple[Requirement, ...]) -> list[str]:
    """The entries of `required` that no attribute in `keys` meets."""
    return [entry for entry, alternatives in required if alternatives.isdisjoint(keys)]
