"""The names the tracer arms write and the collector reads: one spelling for both sides.

An arm gives each operation a root span `ROOT_SPAN` carrying `OP_ID` (the op_id of the
call under it), and every span's resource carries `RUN_ID` (which run sent it) and `ARM`.
The collector finds operations and runs by these names, so a name changed on one side
only would make every operation look uncovered. Plain strings, no imports: the tracers
(in the workers) and the collector (in its own process) both import this module.
"""

ROOT_SPAN = "loadgen.operation"  # the root span of one operation; never an LLM span
OP_ID = "loadgen.op_id"  # span attribute of ROOT_SPAN: the operation's op_id (negative for warm-up)
RUN_ID = "loadgen.run_id"  # resource attribute: the run the span belongs to
ARM = "loadgen.arm"  # resource attribute: the arm that exported it
SERVICE_NAME = "service.name"  # resource attribute (OTel's): "loadgen-{arm}-{provider}"

# Langfuse's OTLP ingest path under its host: the langfuse arm posts there, the collector serves it.
LANGFUSE_OTLP_PATH = "/api/public/otel/v1/traces"

# The LLM-span conventions the collector checks attributes against
# (loadgen.collector.conventions); an arm names the one its LLM spans follow (loadgen.arms).
OTEL_GENAI = "otel_genai"
OPENINFERENCE = "openinference"
HONEYHIVE = "honeyhive"
LANGFUSE = "langfuse"
LMNR = "lmnr"  # Laminar: GenAI attributes plus its own lmnr.span.* (loadgen.tracers.lmnr)
MLFLOW = "mlflow"  # MLflow tracing: its own mlflow.* attributes, JSON text (loadgen.tracers.mlflow)


def over_honeyhive(inner: str) -> str:
    """The convention of a HoneyHive LLM span whose instrumentor follows `inner`."""
    return f"{HONEYHIVE}/{inner}"
