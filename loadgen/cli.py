"""Command line: parse, build a profile, call. No logic of its own.

Exit codes: 0 success, 1 internal failure, 2 bad usage or profile, 3 run completed but
invalid, 4 target unreachable, 5 `loadgen compare`'s gate failed, 130 interrupted (results so
far still written).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from loadgen.arms import ARM_NAMES
from loadgen.cli_flags import overrides
from loadgen.errors import ExitCode, UserError
from loadgen.profile import ProfileError
from loadgen.profile_runs import parse_duration
from loadgen.profile_files import load_profile
from loadgen.report.outputs import BESIDE

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "quickstart.toml"

# Wide enough for the summary table when output goes to a file or a pipe.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)


def _fail(message: str, code: int) -> None:
    # soft_wrap: a long message stays one line, however narrow the terminal. Each line of a
    # multi-line message (one per bad profile key) is complete on its own; the escape keeps
    # a user's brackets (`[load]`) from being read as markup.
    for line in message.splitlines():
        err.print(f"[bold red]loadgen:[/] {escape(line)}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(int(code))


def _report_options(command):
    """--html, --plots and --csv: the report outputs (a profile's [outputs] keys; the flag wins). Given
    bare, each goes beside the results JSON (RESULTS.html, RESULTS-plots/, RESULTS-csv/), or without
    one to loadgen-report.html, loadgen-plots/, loadgen-csv/."""
    for option in reversed((
        click.option("--html", type=click.Path(dir_okay=False), is_flag=False, flag_value=BESIDE, metavar="[FILE]",
                     help="Write the self-contained HTML report here (bare: beside the results JSON)."),
        click.option("--plots", type=click.Path(file_okay=False), is_flag=False, flag_value=BESIDE, metavar="[DIR]",
                     help="Write the charts as PNG files in this folder (bare: beside the results JSON)."),
        click.option("--csv", type=click.Path(file_okay=False), is_flag=False, flag_value=BESIDE, metavar="[DIR]",
                     help="Write one CSV file per table in this folder (bare: beside the results JSON)."),
    )):
        command = option(command)
    return command


def _duration(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loadgen")
def main() -> None:
    """Open-loop load generator that measures what LLM tracing costs."""


@main.command()
@click.argument("profile_path", metavar="[PROFILE]", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE",
              help="Set any profile key (value read as TOML, else text), e.g. load.rate=50; repeatable; "
                   "applied after the file, before the other flags.")
@click.option("--provider", type=click.Choice(["openai", "anthropic", "both"]), help="API family to call.")
@click.option("--base-url", help="Send calls to this OpenAI/Anthropic-compatible server (openai's includes /v1).")
@click.option("--target", type=click.Choice(["embedded", "url", "real"]), help="embedded mock, a URL, or the real APIs.")
@click.option("--rate", type=float, help="Open loop: calls per second.")
@click.option("--arrival", type=click.Choice(["constant", "poisson", "ramp"]), help="Open-loop arrival process.")
@click.option("--rate-end", type=float, help="With --arrival ramp: the rate at the end.")
@click.option("--concurrency", type=int,
              help="Closed loop: N virtual users (async users; with --client sync, N OS threads).")
@click.option("--concurrent-threads", type=int,
              help="Closed loop of N OS threads, each with the SDK's sync client making its next call when its "
                   "last one ends: --client sync with --concurrency N.")
@click.option("--sequential", is_flag=True, default=False, help="Closed loop with one user.")
@click.option("--duration", callback=_duration, help="Measured phase length, e.g. 30s, 2m.")
@click.option("--operations", type=int, help="Measured operations (instead of --duration).")
@click.option("--warmup-operations", type=int, help="Operations before counting starts.")
@click.option("--stream/--no-stream", default=None, help="Stream responses (TTFT and ITL) or not.")
@click.option("--span-size-mode", type=click.Choice(["small", "medium", "large", "mixed"]), help="Requested output size.")
@click.option("--seed", type=int, help="Seed for prompts and schedule.")
@click.option("--timeout", type=float, help="Per-call deadline in seconds.")
@click.option("--openai-model", help="Model name for OpenAI calls.")
@click.option("--anthropic-model", help="Model name for Anthropic calls.")
@click.option("--max-in-flight", type=int, help="Shed (and count) calls beyond this many in flight.")
@click.option("--connections", type=int, help="HTTP connection pool size.")
@click.option("--client", type=click.Choice(["async", "sync", "raw"]),
              help="async: the SDKs' async clients (default); sync: their sync clients, called from a pool of OS "
                   "threads (--threads); raw: the same request bytes at wire speed on loadgen's own HTTP client, "
                   "baseline only.")
@click.option("--clients", metavar="LIST",
              help="Run every mode once per client, in order, each with rows of its own, e.g. async,sync.")
@click.option("--threads", metavar="N|auto",
              help="With --client sync in an open loop: OS threads per worker, 1-1024, or 'auto' (default: the "
                   "rate × (the expected call latency + 5 s for a stall), said before the run).")
@click.option("--max-tokens", type=int, help="Cap on requested output tokens.")
@click.option("--workers", help="Worker processes per provider: a number or 'auto' (one per 100 calls/s, 5,000 with --client raw, up to one per core).")
@click.option("--engine", type=click.Choice(["local", "ray"]),
              help="Where workers run: local processes (default) or Ray actors, one CPU per shard (loadgen[ray]).")
@click.option("--ray-address", help="With --engine ray: the Ray cluster to join ('auto' or HOST:PORT); "
                                    "default: a local Ray sized to this machine.")
@click.option("--mock-ttft-ms", type=float, help="Embedded mock: time to first token.")
@click.option("--mock-itl-ms", type=float, help="Embedded mock: inter-token gap.")
@click.option("--arms", help=f"Arms, comma-separated: {','.join(ARM_NAMES)}; "
                   "baseline may appear twice (baseline-2, compared with the first).")
@click.option("--collector-url", help="Send spans to this OTLP/HTTP receiver (URL/v1/traces) instead of the embedded collector.")
@click.option("--max-queue-size", type=int, help="Batch span processor queue size.")
@click.option("--schedule-delay-ms", type=int, help="Batch span processor schedule delay.")
@click.option("--max-export-batch-size", type=int, help="Batch span processor batch size.")
@click.option("--calibrate-us", type=int, help="Calibration arm: µs the event loop is held per call.")
@click.option("--calibrate-kind", type=click.Choice(["spin", "sleep"]),
              help="Calibration arm: hold the loop busy-waiting (spin, default) or in time.sleep (sleep, no CPU).")
@click.option("--calibrate-at", type=click.Choice(["before", "after"]),
              help="Calibration arm: hold it before the provider call (default) or after it returns.")
@click.option("--calibrate-mib", type=int, help="Calibration arm: MiB of memory held for the run.")
@click.option("--calibrate-leak-kib", type=float, help="Calibration arm: KiB more held after every call (a known leak).")
@click.option("--soak", is_flag=True, default=None, help="Run as a soak: all arms at once, in time windows, leak verdict.")
@click.option("--window", callback=_duration, help="Soak window length (default 60s).")
@click.option("--soak-jsonl", type=click.Path(dir_okay=False), help="Soak: append each window here (JSONL).")
@click.option("--tracemalloc", is_flag=True, default=None, help="Soak: trace allocations, report the top growth sites.")
@click.option("--export-json", type=click.Path(dir_okay=False), help="Write the results document here.")
@_report_options
@click.option("--quiet", is_flag=True, default=False, help="No live progress display.")
@click.option("--north-star-only", is_flag=True, default=False, help="Print only the north-star table.")
@click.option("--yes", "-y", is_flag=True, default=False,
              help="With --target real: send the run even past the profile's call and token caps.")
@click.option("--rounds", help="Blocks the arms take in turn (A B A B …): a number or 'auto'.")
@click.option("--replicas", help="Worker processes per arm taking its blocks in turn, so the overhead CI "
                                 "carries the difference between processes: a number (1-8) or 'auto' (default).")
@click.option("--validate-only", is_flag=True, default=False,
              help="Check keys, target, collector and arms without sending load.")
@click.option("--test-determinism", is_flag=True, default=False,
              help="Hash the profile's schedule and prompts (every load model) in two fresh processes; no load.")
@click.option("--test-connections", is_flag=True, default=False,
              help="One call per provider and target, one export per arm; no load.")
def run(profile_path: str | None, quiet: bool, export_json: str | None, validate_only: bool,
        test_connections: bool, test_determinism: bool, north_star_only: bool, yes: bool, **flags: Any) -> None:
    """Run a load test (default profile: profiles/quickstart.toml)."""
    from loadgen.run_command import run_command

    path = Path(profile_path) if profile_path else (DEFAULT_PROFILE if DEFAULT_PROFILE.exists() else None)
    try:
        sets = flags.pop("sets")
        profile = load_profile(path, overrides(flags), sets)
    except (ProfileError, click.UsageError) as exc:
        _fail(str(exc) if isinstance(exc, ProfileError) else exc.format_message(), ExitCode.USAGE)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # A shell starts background jobs with SIGINT ignored; an interrupt must still stop the
    # run and write what it has, however loadgen was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if test_determinism:
        from loadgen.determinism import check_determinism

        sys.exit(check_determinism(profile, out=out))
    if validate_only or test_connections:
        from loadgen import checks

        try:
            found = checks.validation_checks(profile) if validate_only else checks.connection_checks(profile)
        except KeyboardInterrupt:
            sys.exit(int(ExitCode.INTERRUPTED))
        sys.exit(checks.report(found, out))
    export_json = export_json or profile.outputs.results_json
    try:
        code = run_command(profile, export_json=export_json, out=out, err=err, live=not quiet,
                           confirmed=yes, north_star_only=north_star_only)
    except UserError as exc:
        _fail(str(exc), exc.code)
    sys.exit(int(code))


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


FAULTS_PROFILE = PROFILES_DIR / "faults.toml"


@main.command()
@click.argument("profile_path", metavar="[PROFILE]", required=False, type=click.Path(dir_okay=False))
@click.option("--scenarios", help="Scenarios, comma-separated (default: the profile's; names in README).")
@click.option("--arms", help=f"Arms, comma-separated: {','.join(ARM_NAMES)}.")
@click.option("--provider", type=click.Choice(["openai", "anthropic", "both"]), help="API family to call.")
@click.option("--rate", type=float, help="Calls per second per arm in each scenario.")
@click.option("--client", type=click.Choice(["async", "sync"]),
              help="The SDK client every scenario calls with: async (default) or sync (a pool of OS threads).")
@click.option("--set", "sets", multiple=True, metavar="KEY.PATH=VALUE",
              help="Set any profile key (value read as TOML, else text), e.g. faults.during=6; repeatable.")
@click.option("--export-json", type=click.Path(dir_okay=False), help="Write the matrix document here.")
@_report_options
@click.option("--quiet", is_flag=True, default=False, help="No live progress display.")
def faults(profile_path: str | None, scenarios: str | None, sets: tuple[str, ...], export_json: str | None,
           quiet: bool, **flags: Any) -> None:
    """Run the fault matrix: scenarios × arms × providers, each fault between a before and an after
    phase (default profile: profiles/faults.toml). Exit 0 whatever the verdicts; 3 only when the
    generator did not keep its schedule."""
    from loadgen.run_command import faults_command

    path = Path(profile_path) if profile_path else (FAULTS_PROFILE if FAULTS_PROFILE.exists() else None)
    try:
        given = overrides(flags)
        given.setdefault("faults", {})
        if scenarios:
            given["faults"]["scenarios"] = [name.strip() for name in scenarios.split(",") if name.strip()]
        profile = load_profile(path, given, sets)
    except (ProfileError, click.UsageError) as exc:
        _fail(str(exc) if isinstance(exc, ProfileError) else exc.format_message(), ExitCode.USAGE)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = faults_command(profile, export_json=export_json or profile.outputs.results_json, out=out, err=err,
                              live=not quiet)
    except UserError as exc:
        _fail(str(exc), exc.code)
    sys.exit(int(code))


_GATE_LIMITS = (
    ("--max-overhead-increase-ms", "the latency overhead", "ms"),
    ("--max-loop-delay-increase-ms", "the loop delay overhead", "ms"),
    ("--max-memory-increase-mib", "the memory fixed cost", "MiB"),
    ("--max-memory-growth-increase-mib-per-1k-ops", "the memory growth", "MiB per 1,000 operations"),
    ("--max-drop-rate-increase-percent", "the drop rate", "percentage points"),
    ("--max-export-p95-increase-ms", "the export latency p95", "ms"),
    ("--max-throughput-decrease-percent", "the achieved rate", "% of the base's"),
)


def _gate_limits(command):
    for flag, figure, unit in reversed(_GATE_LIMITS):
        command = click.option(flag, type=click.FloatRange(min=0), metavar="N",
                               help=f"Fail (exit 5) when {figure} got worse by more than N {unit}, beyond noise "
                                    "(the change's whole 95 % CI past N).")(command)
    return command


@main.command()
@click.argument("base_path", metavar="BASE.json", type=click.Path(dir_okay=False))
@click.argument("new_path", metavar="NEW.json", type=click.Path(dir_okay=False))
@click.option("--fail-on", type=click.Choice(["worse", "never"]),
              help="worse: exit 5 when any figure is worse beyond noise; never (default): only the --max-… limits.")
@_gate_limits
@click.option("--force", is_flag=True, default=False,
              help="Compare runs that are not the same experiment (prompts, seed, load, target), saying what differs.")
@click.option("--export-json", type=click.Path(dir_okay=False), help="Write the comparison document here.")
@_report_options
def compare(base_path: str, new_path: str, force: bool, export_json: str | None, html: str | None,
            plots: str | None, csv: str | None, **gate_flags: Any) -> None:
    """Compare two runs' results: each provider/arm/mode's overhead, loop delay, memory, drop rate,
    export p95 and throughput — better, worse or within noise, by each figure's CI. Exit 0; 5 when
    a gate (--fail-on worse, a --max-… limit, [gate] in NEW's profile) fails; 2 when refused."""
    from loadgen.compare_command import compare_command

    try:
        code = compare_command(base_path, new_path, gate_flags=gate_flags, force=force, export_json=export_json,
                               out=out, err=err, outputs={"html": html, "plots": plots, "csv": csv})
    except UserError as exc:
        _fail(str(exc), exc.code)
    except ValidationError as exc:
        _fail(f"compare: [gate] in {new_path}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", ExitCode.USAGE)
    sys.exit(int(code))


@main.command()
@click.argument("results_path", metavar="RESULTS.json", type=click.Path(dir_okay=False))
@_report_options
def report(results_path: str, html: str | None, plots: str | None, csv: str | None) -> None:
    """Make the HTML page, PNG charts or CSV tables of a results document (at least one of them)."""
    from loadgen.report.outputs import read_document, write_outputs

    if not (html or plots or csv):
        _fail("report: say what to write: --html FILE, --plots DIR and/or --csv DIR", ExitCode.USAGE)
    try:
        document = read_document(Path(results_path))
        write_outputs(document, html=html, plots=plots, csv=csv, beside=results_path,
                      say=lambda line: err.print(line, highlight=False, soft_wrap=True))
    except UserError as exc:
        _fail(str(exc), exc.code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--ttft-ms", type=float, default=50.0, show_default=True, help="Time to first token.")
@click.option("--itl-ms", type=float, default=2.0, show_default=True, help="Inter-token gap.")
@click.option("--jitter", type=float, default=0.0, show_default=True, help="Latency jitter, 0..1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Latency model seed.")
def mock(host: str, port: int, ttft_ms: float, itl_ms: float, jitter: float, seed: int) -> None:
    """Serve the mock LLM (OpenAI /v1/chat/completions and Anthropic /v1/messages)."""
    from pydantic import ValidationError

    from loadgen.mock_llm import MockConfig, serve

    try:
        config = MockConfig(ttft_ms=ttft_ms, itl_ms=itl_ms, jitter=jitter, seed=seed)
    except ValidationError as exc:
        _fail(f"mock: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", ExitCode.USAGE)

    def ready(actual_port: int) -> None:
        err.print(f"mock LLM listening on http://{host}:{actual_port} (openai base_url http://{host}:{actual_port}/v1)")

    try:
        serve(config, host=host, port=port, on_ready=ready)
    except OSError as exc:
        _fail(f"mock: cannot listen on {host}:{port}: {exc.strerror}", ExitCode.USAGE)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=4318, show_default=True, help="Port (0 picks a free one).")
def collector(host: str, port: int) -> None:
    """Serve the OTLP/HTTP collector (/v1/traces, HoneyHive's /opentelemetry/v1/traces and /session/start)."""
    from loadgen.collector import CollectorConfig, serve

    def ready(actual_port: int) -> None:
        err.print(f"collector listening on http://{host}:{actual_port} (figures: GET /_collector/stats)")

    try:
        serve(CollectorConfig(), host=host, port=port, on_ready=ready)
    except OSError as exc:
        _fail(f"collector: cannot listen on {host}:{port}: {exc.strerror}", ExitCode.USAGE)


@main.command()
@click.option("--test-determinism", is_flag=True, default=False,
              help="Hash the default profile's prompts and schedule, with these settings, in two fresh processes.")
@click.option("--operations", type=int, default=2000, show_default=True, help="Operations to hash or show.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--span-size-mode", type=click.Choice(["small", "medium", "large", "mixed"]), default="mixed", show_default=True)
def prompts(test_determinism: bool, operations: int, seed: int, span_size_mode: str) -> None:
    """Show prompts, or prove they are deterministic across processes and providers."""
    from loadgen.determinism import check_determinism as check, print_sample
    from loadgen.profile import Profile

    profile = Profile(seed=seed, span_size_mode=span_size_mode, operations=operations)
    if test_determinism:
        sys.exit(check(profile, out=out, limit=operations))
    print_sample(profile, operations=min(operations, 10), out=out)


@main.command()
@click.argument("paths", metavar="PROFILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(paths: tuple[str, ...]) -> None:
    """Check profile files without running them: `ok` per good file, one line per error."""
    failed = False
    for path in paths:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            failed = True
            for line in str(exc).splitlines():
                err.print(line, markup=False, highlight=False, soft_wrap=True)
            continue
        about = f"{profile.name}: {profile.description}" if profile.description else profile.name
        out.print(f"ok  {path} ({about})", markup=False, highlight=False, soft_wrap=True)
    sys.exit(int(ExitCode.USAGE if failed else ExitCode.OK))


@main.command()
def schema() -> None:
    """Print the JSON Schema of a profile file (for editors and CI)."""
    import json

    from loadgen.profile_files import file_schema

    click.echo(json.dumps(file_schema(), indent=2))


if __name__ == "__main__":
    main()
