"""The arm registry: every tracer arm loadgen can run, and what each needs, in one table.

An arm is a way of tracing the same calls (`--arms baseline,otel,…`): the baseline
traces nothing; the others each install a tracer in the worker (loadgen/tracers/). Every
question about an arm by name is answered here and nowhere else: which names exist (and
their order, which the profile's schema and `--arms` show), how to build one, which
packages `--validate-only` imports for it, which providers it runs on, whether it
exports spans, and the convention its LLM spans follow in the collector's figures.

This module imports nothing heavy (no OpenTelemetry, no SDK, no profile): the profile,
the planner and the checks read the table in the main process, and an arm's module is
imported only by `make_arm`, in the worker that runs it.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from loadgen.span_names import LANGFUSE, LMNR, MLFLOW, OPENINFERENCE, OTEL_GENAI, over_honeyhive


@dataclass(frozen=True)
class ArmInfo:
    name: str
    # "module:function", called as function(settings, provider_name, model, calibration)
    # in the worker; a string, so reading the table imports no arm.
    factory: str
    imports: tuple[str, ...] = ()  # modules --validate-only imports to check the arm's packages
    providers: tuple[str, ...] | None = None  # the providers it runs on; None: every provider
    traces: bool = True  # exports spans (so needs a collector, and has span figures)
    convention: str | None = None  # its LLM spans' convention in the collector's by_convention
    # The requirements the arm needs in an environment of its own (loadgen/envs.py): always
    # for an arm marked `own_env`, and for any arm run at a version (`--arms name@1.2.3`,
    # which pins `distribution`). Empty: the arm runs in loadgen's own environment only.
    packages: tuple[str, ...] = ()
    distribution: str | None = None  # the PyPI package that `name@version` pins
    own_env: bool = False  # never runs in loadgen's environment (its packages cannot live there)
    # Providers whose streamed calls it cannot trace (a tracer bug, measured): a streaming mode
    # leaves the arm out there, and says so in the docs, rather than count its failures as cost.
    no_streaming_on: tuple[str, ...] = ()


ARMS: dict[str, ArmInfo] = {info.name: info for info in (
    ArmInfo("baseline", "loadgen.tracers.base:no_tracing", traces=False),
    ArmInfo("otel", "loadgen.tracers.otel_genai:otel_arm",
            ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
            convention=OTEL_GENAI),
    ArmInfo("openinference", "loadgen.tracers.instrumentors:openinference_arm",
            ("openinference.instrumentation.openai", "openinference.instrumentation.anthropic"),
            convention=OPENINFERENCE),
    ArmInfo("openllmetry", "loadgen.tracers.instrumentors:openllmetry_arm",
            ("opentelemetry.instrumentation.openai", "opentelemetry.instrumentation.anthropic"),
            convention=OTEL_GENAI),
    # HoneyHive traces through OpenInference's instrumentors (loadgen.tracers.honeyhive).
    ArmInfo("honeyhive", "loadgen.tracers.honeyhive:honeyhive_arm",
            ("honeyhive", "openinference.instrumentation.openai"),
            convention=over_honeyhive(OPENINFERENCE),
            packages=("honeyhive", "openinference-instrumentation-openai", "openinference-instrumentation-anthropic"),
            distribution="honeyhive"),
    # The Traceloop SDK: OpenLLMetry's instrumentors behind Traceloop.init's own exporter.
    # traceloop-sdk 0.62 imports the original httpx without declaring it (openai 3 brings httpx2).
    ArmInfo("traceloop", "loadgen.tracers.traceloop:traceloop_arm",
            ("traceloop.sdk", "opentelemetry.instrumentation.openai", "opentelemetry.instrumentation.anthropic"),
            convention=OTEL_GENAI,
            packages=("traceloop-sdk", "httpx"), distribution="traceloop-sdk", own_env=True),
    # OpenLIT: its own instrumentors and OTLP exporter (openlit.init). Releases from 1.27 pin
    # openai<2 or anthropic<1, so 1.26.0 is the newest beside the pinned SDKs; its
    # opentelemetry-instrumentation 0.48b0 imports pkg_resources, gone from setuptools 81. Its
    # streamed OpenAI calls count tokens with tiktoken, which fetches its encoding files from
    # the internet on the event loop: offline (here) every call stalls the loop (a leaderboard run
    # measured +353 ms and the send rate lost), so that path is left out until the files can be
    # provided (docs/instrumentors.md).
    ArmInfo("openlit", "loadgen.tracers.openlit:openlit_arm", ("openlit",),
            convention=OTEL_GENAI,
            packages=("openlit", "setuptools<81"), distribution="openlit", own_env=True,
            no_streaming_on=("openai",)),
    # The anthropic SDK's own tracing: there is nothing of it to switch on in an OpenAI call.
    ArmInfo("anthropic-native", "loadgen.tracers.anthropic_native:anthropic_native_arm", ("anthropic",),
            providers=("anthropic",), convention=OTEL_GENAI),
    # Langfuse's own OpenAI integration; on Anthropic, the OpenLLMetry instrumentor its guide
    # installs (loadgen.tracers.langfuse). Its OpenAI spans follow Langfuse's convention,
    # its Anthropic spans OTel GenAI (the collector tells them apart by their attributes).
    ArmInfo("langfuse", "loadgen.tracers.langfuse:langfuse_arm",
            ("langfuse", "langfuse.openai", "opentelemetry.instrumentation.anthropic"),
            convention=LANGFUSE,
            packages=("langfuse>=3", "opentelemetry-instrumentation-anthropic"),
            distribution="langfuse", own_env=True),
    # Logfire's own export pipeline and its OpenAI / Anthropic instrumentation (loadgen.tracers.logfire).
    ArmInfo("logfire", "loadgen.tracers.logfire:logfire_arm", ("logfire",),
            convention=OTEL_GENAI, packages=("logfire",), distribution="logfire", own_env=True),
    # Laminar: its own copies of OpenLLMetry's instrumentors, OTLP/HTTP to /v1/traces (loadgen.tracers.lmnr).
    # >=0.8: with the OTel SDK held at 1.45.2 a resolver falls back to lmnr 0.7, which has
    # neither init_tracing nor force_http in initialize; better a resolver's reason than that.
    ArmInfo("lmnr", "loadgen.tracers.lmnr:lmnr_arm", ("lmnr",), convention=LMNR,
            packages=("lmnr>=0.8",), distribution="lmnr", own_env=True),
    # LangSmith in its OpenTelemetry mode: its client wrappers' runs become OTel spans (loadgen.tracers.langsmith).
    # LangSmith 0.15.1's wrap_anthropic fails every streamed call with anthropic 2.14 (TypeError
    # in accumulate_event; docs/instrumentors.md).
    ArmInfo("langsmith", "loadgen.tracers.langsmith:langsmith_arm", ("langsmith", "langsmith.wrappers"),
            convention=OTEL_GENAI, packages=("langsmith[otel]",), distribution="langsmith", own_env=True,
            no_streaming_on=("anthropic",)),
    # MLflow tracing with autolog, OTLP/HTTP to the collector (loadgen.tracers.mlflow).
    ArmInfo("mlflow", "loadgen.tracers.mlflow:mlflow_arm", ("mlflow", "mlflow.openai", "mlflow.anthropic"),
            convention=MLFLOW, packages=("mlflow-tracing",), distribution="mlflow-tracing", own_env=True),
    # A known cost in place of a tracer: it exports nothing.
    ArmInfo("calibration", "loadgen.tracers.calibration:calibration_arm", traces=False),
)}

ARM_NAMES = tuple(ARMS)


def parse_entry(entry: str) -> tuple[str, str | None]:
    """An entry of `tracing.arms` → (arm name, what follows its @ or None).

    `honeyhive@1.6.0` is the honeyhive arm at version 1.6.0, in an environment of its own;
    `baseline@openlit` is a baseline in the environment of the entry `openlit`.
    """
    name, at, rest = entry.partition("@")
    return name, (rest if at else None)


def check_entry(entry: str) -> None:
    """Raise ValueError, with the names to choose from, unless `entry` names an arm correctly."""
    name, at = parse_entry(entry)
    if name not in ARMS:
        close = difflib.get_close_matches(name, ARM_NAMES, n=1)
        raise ValueError(f"unknown arm {name!r} " + (f"(did you mean {close[0]!r}?)" if close
                                                     else f"(arms: {', '.join(ARM_NAMES)})"))
    if at is not None and not at:
        raise ValueError(f"{entry!r}: nothing after the @ (name@version, or baseline@<arm>)")
    if at is not None and name != "baseline" and ARMS[name].distribution is None:
        raise ValueError(f"{entry!r}: the {name} arm has no package to pin a version of")


def is_baseline(label: str) -> bool:
    """Whether a row label is a baseline's: 'baseline', 'baseline-2', or 'baseline@<arm>' (a baseline
    in that arm's environment). What the generator does alone, paired with no one."""
    return label == "baseline" or label.startswith(("baseline-", "baseline@"))


def installed_version(arm: str) -> str | None:
    """The version of the arm's package in this environment (in a worker: the one it traces with)."""
    from importlib import metadata

    distribution = ARMS[arm].distribution
    try:
        return metadata.version(distribution) if distribution else None
    except metadata.PackageNotFoundError:
        return None


def runs_on(arm: str, provider: str, stream: bool = False) -> bool:
    """Whether the arm can trace this provider's calls, streamed or not (a plan skips the pairs
    where it cannot)."""
    info = ARMS[arm]
    return (info.providers is None or provider in info.providers) and not (stream and provider in info.no_streaming_on)


def traces(arm: str) -> bool:
    """Whether the arm exports spans, so needs a collector and has span figures."""
    return ARMS[arm].traces


def providers_sentence(arm: str) -> str:
    """'Anthropic calls only' for an arm that runs on some providers only; '' for the others."""
    providers = ARMS[arm].providers
    if providers is None:
        return ""
    return " and ".join(provider.capitalize() for provider in providers) + " calls only"


def make_arm(name: str, settings, provider_name: str, model: str, calibration=None):
    """The arm's handle in this worker (a loadgen.tracers.Arm); the baseline's is NoTracing, never None.

    `settings` (a tracers.TracingSettings) may be None only for an arm that exports no
    spans; `calibration` (a tracers.CalibrationSettings) is the calibration arm's known
    costs, its defaults when None. Their types stay unnamed here: even a type-only import
    of loadgen.tracers would close a cycle (profile → arms → tracers → prompts → profile).
    """
    info = ARMS.get(name)
    if info is None:
        raise ValueError(f"unknown arm {name!r}")
    if not runs_on(name, provider_name):
        raise ValueError(f"the {name} arm traces {providers_sentence(name)}")
    if info.traces and settings is None:
        raise ValueError(f"arm {name!r} needs tracing settings (a collector)")
    module, function = info.factory.split(":")
    factory = getattr(importlib.import_module(module), function)
    return factory(settings, provider_name, model, calibration)
