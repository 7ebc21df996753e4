"""Ingest throughput of the embedded OTLP collector on one core.

Starts the collector in a subprocess pinned to one core (`taskset -c 0`) and a sender
subprocess pinned to another (`taskset -c 1`). The sender keeps a few keep-alive
connections busy, closed-loop, with OTLP/HTTP export requests of 512 spans each, built
like an `otel` arm's batches: per operation a root span `loadgen.operation` (4
attributes) and its LLM child span (15 OTel GenAI attributes, prompt and completion
text included): 329 KiB of protobuf per request, ~1.1 KiB per LLM span. Every request
carries fresh trace and span ids (the sender patches them into a prebuilt body), so all
spans count as new.

Prints spans/s and requests/s as acknowledged by the collector, the collector's CPU
utilisation and its CPU time per span (from /proc, so a figure stays meaningful when
other processes share the core), for protobuf, protobuf + gzip, LLM spans only, and
OTLP/JSON. The acceptance figure is >= 20,000 spans/s on one core (protobuf, mixed).

    .venv/bin/python benchmarks/bench_collector.py [--duration 10] [--server-core 0] [--sender-core 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from _common import REPO, command_line, http_json
from bench_mock import _core_busy_seconds, _cpu_seconds, _pinned

TARGET_SPANS_PER_S = 20_000
SPANS_PER_REQUEST = 512
SENDERS = 4

SERVER_CODE = (
    "from loadgen.collector import CollectorConfig, serve; "
    "serve(CollectorConfig(), on_ready=lambda p: print(p, flush=True))"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    encoding: str  # "protobuf" or "json"
    llm_only: bool = False
    gzip: bool = False


SCENARIOS = (
    Scenario("protobuf, roots + LLM spans", "protobuf"),  # the acceptance figure
    Scenario("protobuf + gzip, roots + LLM spans", "protobuf", gzip=True),
    Scenario("protobuf, LLM spans only", "protobuf", llm_only=True),
    Scenario("OTLP/JSON, roots + LLM spans", "json"),
)


# --- the requests --------------------------------------------------------------------------


def _llm_attributes(op_id: int) -> dict:
    return {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-mock",
        "gen_ai.response.model": "gpt-mock", "gen_ai.response.id": f"chatcmpl-{op_id:012d}",
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.7, "gen_ai.usage.input_tokens": 24, "gen_ai.usage.output_tokens": 100,
        "server.address": "127.0.0.1", "server.port": 8000, "loadgen.op_id": op_id,
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": f"Operation {op_id}: " + "lorem " * 30}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "ipsum " * 50}]),
    }


def build_template(encoding: str, llm_only: bool) -> tuple[bytes, list[tuple[int, int]]]:
    """One request body and the (offset, length) of every trace/span id in it, to be replaced per send."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    spans: list = []

    class Keep(SpanExporter):
        def export(self, batch):
            spans.extend(batch)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "bench", "loadgen.run_id": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("loadgen.bench")
    op_id = 0
    while len(spans) < SPANS_PER_REQUEST:
        if llm_only:
            with tracer.start_as_current_span("chat gpt-mock", attributes=_llm_attributes(op_id)):
                pass
        else:
            root_attributes = {"loadgen.op_id": op_id, "loadgen.provider": "openai", "loadgen.arm": "otel"}
            with tracer.start_as_current_span("loadgen.operation", attributes=root_attributes):
                with tracer.start_as_current_span("chat gpt-mock", attributes=_llm_attributes(op_id)):
                    pass
        op_id += 1
    spans = spans[:SPANS_PER_REQUEST]
    ids = {span.context.trace_id.to_bytes(16, "big") for span in spans}
    ids |= {span.context.span_id.to_bytes(8, "big") for span in spans}
    if encoding == "protobuf":
        body = encode_spans(spans).SerializeToString()
    else:
        from google.protobuf.json_format import MessageToDict
        document = MessageToDict(encode_spans(spans))
        _ids_to_hex(document)
        body = json.dumps(document).encode()
        ids = {i.hex().encode() for i in ids}
    offsets = []
    for value in ids:
        start = body.find(value)
        while start != -1:
            offsets.append((start, len(value)))
            start = body.find(value, start + 1)
    return body, offsets


def _ids_to_hex(node) -> None:
    """protobuf's JSON mapping has base64 ids; OTLP/JSON wants hex."""
    import base64
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)


def fresh_body(template: bytes, offsets: list[tuple[int, int]], hex_ids: bool) -> bytes:
    """The template with every id replaced by a new random one (same id -> same replacement)."""
    body = bytearray(template)
    replacements: dict[bytes, bytes] = {}
    for start, length in offsets:
        old = template[start:start + length]
        new = replacements.get(old)
        if new is None:
            new = replacements[old] = os.urandom(length // 2).hex().encode() if hex_ids else os.urandom(length)
        body[start:start + length] = new
    return bytes(body)


# --- the sender (its own process) -----------------------------------------------------------


async def _send_loop(port: int, template: bytes, offsets: list, scenario: Scenario, deadline: float,
                     counts: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    content_type = b"application/x-protobuf" if scenario.encoding == "protobuf" else b"application/json"
    while time.monotonic() < deadline:
        body = fresh_body(template, offsets, scenario.encoding == "json")
        extra = b""
        if scenario.gzip:
            body = gzip.compress(body, compresslevel=1)
            extra = b"content-encoding: gzip\r\n"
        writer.write(b"POST /v1/traces HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: %s\r\n%scontent-length: %d\r\n\r\n"
                     % (content_type, extra, len(body)) + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        counts["ok" if head.startswith(b"HTTP/1.1 200") else "failed"] += 1
    writer.close()


def sender_main(port: int, scenario: Scenario, duration: float) -> None:
    template, offsets = build_template(scenario.encoding, scenario.llm_only)
    counts = {"ok": 0, "failed": 0}
    print("ready", flush=True)
    deadline = time.monotonic() + duration

    async def run() -> None:
        await asyncio.gather(*(_send_loop(port, template, offsets, scenario, deadline, counts) for _ in range(SENDERS)))

    asyncio.run(run())
    counts["body_bytes"] = len(template)
    print(json.dumps(counts), flush=True)


# --- the measurement -----------------------------------------------------------------------


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> dict:
    server = subprocess.Popen(_pinned(args.server_core, [sys.executable, "-c", SERVER_CODE]),
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        sender_cmd = _pinned(args.sender_core, [sys.executable, __file__, "--sender", str(port),
                                                "--scenario", scenario.name, "--duration", str(args.duration)])
        sender = subprocess.Popen(sender_cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        if sender.stdout.readline().strip() != "ready":
            raise RuntimeError("the sender did not start")
        time.sleep(1.0)  # measure from the steady state, not the first connections
        cpu_before, core_before = _cpu_seconds(server.pid), _core_busy_seconds(args.server_core)
        spans_before, t_before = http_json(url + "/_collector/stats?run_id=bench")["spans_received"], time.monotonic()
        time.sleep(args.duration - 2.0)
        spans_after, t_after = http_json(url + "/_collector/stats?run_id=bench")["spans_received"], time.monotonic()
        cpu = _cpu_seconds(server.pid) - cpu_before
        neighbours = max(0.0, _core_busy_seconds(args.server_core) - core_before - cpu)
        sent = json.loads(sender.communicate(timeout=60)[0])
        totals = http_json(url + "/_collector/stats")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    elapsed = t_after - t_before
    spans = spans_after - spans_before
    run = totals["runs"]["bench"]
    return {
        "scenario": scenario.name,
        "spans_per_s": spans / elapsed,
        "requests_per_s": spans / SPANS_PER_REQUEST / elapsed,
        "cpu_util": cpu / elapsed,
        "neighbour_util": neighbours / elapsed,
        "cpu_us_per_span": cpu / spans * 1e6 if spans else float("nan"),
        "body_bytes": sent["body_bytes"],
        "failed": sent["failed"] + run["duplicates"],  # any duplicate would mean a broken id patch
        "server_cmd": " ".join(_pinned(args.server_core, [".venv/bin/python", "-c", repr(SERVER_CODE)])),
        "sender_cmd": " ".join(_pinned(args.sender_core, [".venv/bin/python", "benchmarks/bench_collector.py",
                                                          "--sender", "PORT", "--scenario", repr(scenario.name),
                                                          "--duration", str(args.duration)])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per scenario (default 10)")
    parser.add_argument("--server-core", type=int, default=0, help="core the collector is pinned to")
    parser.add_argument("--sender-core", type=int, default=1, help="core the sender is pinned to")
    parser.add_argument("--sender", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender is not None:
        sender_main(args.sender, next(s for s in SCENARIOS if s.name == args.scenario), args.duration)
        return 0
    if args.duration < 4:
        parser.error("--duration must be at least 4 s (1 s warm-up, 1 s tail)")
    if (os.cpu_count() or 1) < 2:
        print("bench_collector: one core only; running unpinned", file=sys.stderr)
        args.server_core = args.sender_core = None

    results = []
    for scenario in SCENARIOS:
        result = run_scenario(scenario, args)
        results.append(result)
        print(f"{result['scenario']}: {result['spans_per_s']:,.0f} spans/s ({result['requests_per_s']:,.1f} requests/s "
              f"of {SPANS_PER_REQUEST} spans, {result['body_bytes'] / 1024:,.0f} KiB), collector CPU "
              f"{result['cpu_util']:.0%} (other processes on its core {result['neighbour_util']:.0%}), "
              f"{result['cpu_us_per_span']:.1f} µs CPU/span" + (f", {result['failed']} FAILED" if result["failed"] else ""))
    print(f"\nReproduce: {command_line()}\nor one scenario by hand (from the repo root):")
    print(f"  {results[0]['server_cmd']}   # prints its port\n  {results[0]['sender_cmd']}")
    first = results[0]["spans_per_s"]
    verdict = "meets" if first >= TARGET_SPANS_PER_S else "MISSES"
    print(f"\n{verdict} the target of {TARGET_SPANS_PER_S:,} spans/s on one core ({first:,.0f}).")
    return 0 if first >= TARGET_SPANS_PER_S and not any(r["failed"] for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
