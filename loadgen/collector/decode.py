"""Decoding an OTLP/HTTP trace export — protobuf or OTLP/JSON, plain, gzip or deflate — into spans.

Both encodings come out in one shape, so one ingest loop serves both: a list of
resource blocks, each `(ResourceInfo, [SpanRow, ...])`. A row holds only what the
collector's figures need; attribute values are read only where a figure needs a value
(a root span's op_id, an OpenInference span's kind), never copied per span. A request
that is not ingested (a fault answered it) is read only as far as `spans_by_run`: its run
ids and how many spans each one has in it.

OTLP/JSON is protobuf's JSON mapping with three differences that matter here (OTLP
specification, "JSON Protobuf Encoding"): trace and span ids are hex strings, not
base64; keys are lowerCamelCase only; enums may be integers. The body is walked as
plain dicts rather than parsed with `json_format` into the protobuf classes: that
would decode hex ids as base64 (giving 24- and 12-byte ids) and costs ~10x more per
span. Base64 ids, which some exporters send anyway, are accepted too.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from loadgen.span_names import OP_ID, ROOT_SPAN, RUN_ID, SERVICE_NAME

from .conventions import HONEYHIVE_PREFIXES, OI_KIND_KEY

PROTOBUF = "protobuf"
JSON = "json"
_CONTENT_TYPES = {
    b"application/x-protobuf": PROTOBUF,
    b"application/protobuf": PROTOBUF,
    b"application/json": JSON,
}


class BadRequest(ValueError):
    """The body cannot be decoded; answered with 400 (or 415 for `status` 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ResourceInfo(NamedTuple):
    run_id: str  # resource attribute loadgen.run_id, "" without it
    service: str  # resource attribute service.name, "" without it
    honeyhive: bool  # a resource attribute key starts with honeyhive. / honeyhive_


class SpanRow(NamedTuple):
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # b"" for a root
    name: str
    end_time_unix_nano: int
    keys: set[str]  # the span's attribute keys
    op_id: int | None  # loadgen.op_id of a span named loadgen.operation, else None
    oi_kind: str | None  # openinference.span.kind when present, else None
    status_code: int  # the span's Status.code: 0 unset, 1 ok, STATUS_ERROR


STATUS_ERROR = 2  # OTLP Status.code STATUS_CODE_ERROR
# OTLP/JSON may write an enum as its name or its number.
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": STATUS_ERROR}


Resources = list[tuple[ResourceInfo, list[SpanRow]]]


def encoding_of(content_type: bytes) -> str:
    """PROTOBUF or JSON from a Content-Type header value (parameters such as charset ignored)."""
    encoding = _CONTENT_TYPES.get(content_type.split(b";", 1)[0].strip().lower())
    if encoding is None:
        raise BadRequest(f"unsupported content-type {content_type.decode('latin-1')!r}; "
                         "expected application/x-protobuf or application/json", status=415)
    return encoding


def decompress(body: bytes, content_encoding: bytes) -> bytes:
    """The body without its Content-Encoding (gzip, deflate or identity)."""
    coding = content_encoding.strip().lower()
    try:
        if coding == b"gzip":
            return gzip.decompress(body)
        if coding == b"deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(f"cannot {coding.decode()}-decompress the body: {exc}") from None
    if coding in (b"", b"identity"):
        return body
    raise BadRequest(f"unsupported content-encoding {content_encoding.decode('latin-1')!r}", status=415)


def decode(body: bytes, encoding: str) -> Resources:
    """The resource blocks of an ExportTraceServiceRequest body, in request order."""
    return _decode_protobuf(body) if encoding == PROTOBUF else _decode_json(body)


def spans_by_run(body: bytes, encoding: str) -> dict[str, int]:
    """How many spans of each run id (resource attribute loadgen.run_id, "" without it) an
    ExportTraceServiceRequest body carries, without reading the spans; raises BadRequest."""
    counts: dict[str, int] = {}
    if encoding == PROTOBUF:
        for resource_spans in _parse_protobuf(body).resource_spans:
            run_id = _pb_resource(resource_spans.resource.attributes).run_id
            counts[run_id] = counts.get(run_id, 0) + sum(len(scope.spans) for scope in resource_spans.scope_spans)
        return counts
    document = _parse_json(body)
    try:
        for resource_spans in document.get("resourceSpans") or ():
            run_id = _json_resource(resource_spans.get("resource") or {}).run_id
            spans = sum(len(scope.get("spans") or ()) for scope in resource_spans.get("scopeSpans") or ())
            counts[run_id] = counts.get(run_id, 0) + spans
    except (AttributeError, KeyError, TypeError) as exc:
        raise BadRequest(f"not an OTLP/JSON ExportTraceServiceRequest: {type(exc).__name__}: {exc}") from None
    return counts


# --- protobuf -----------------------------------------------------------------------------


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest(f"not an ExportTraceServiceRequest: {exc}") from None
    return request


def _decode_protobuf(body: bytes) -> Resources:
    request = _parse_protobuf(body)
    resources: Resources = []
    for resource_spans in request.resource_spans:
        rows: list[SpanRow] = []
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = span.attributes
                keys = {kv.key for kv in attributes}
                name = span.name
                rows.append(SpanRow(
                    span.trace_id, span.span_id, span.parent_span_id, name, span.end_time_unix_nano, keys,
                    _pb_int(attributes, OP_ID) if name == ROOT_SPAN else None,
                    _pb_str(attributes, OI_KIND_KEY) if OI_KIND_KEY in keys else None,
                    span.status.code,
                ))
        resources.append((_pb_resource(resource_spans.resource.attributes), rows))
    return resources


def _pb_resource(attributes: Any) -> ResourceInfo:
    run_id = service = ""
    honeyhive = False
    for kv in attributes:
        key = kv.key
        if key == RUN_ID:
            run_id = kv.value.string_value
        elif key == SERVICE_NAME:
            service = kv.value.string_value
        elif key.startswith(HONEYHIVE_PREFIXES):
            honeyhive = True
    return ResourceInfo(run_id, service, honeyhive)


def _pb_str(attributes: Any, key: str) -> str | None:
    for kv in attributes:
        if kv.key == key:
            return kv.value.string_value
    return None


def _pb_int(attributes: Any, key: str) -> int | None:
    for kv in attributes:
        if kv.key == key:
            value = kv.value
            kind = value.WhichOneof("value")
            if kind == "int_value":
                return value.int_value
            if kind == "string_value" and _is_int_text(value.string_value):
                return int(value.string_value)
            return None
    return None


# --- OTLP/JSON ----------------------------------------------------------------------------


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"not JSON: {exc}") from None


def _decode_json(body: bytes) -> Resources:
    document = _parse_json(body)
    try:
        return [
            (_json_resource(resource_spans.get("resource") or {}), _json_rows(resource_spans))
            for resource_spans in document.get("resourceSpans") or ()
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"not an OTLP/JSON ExportTraceServiceRequest: {type(exc).__name__}: {exc}") from None


def _json_rows(resource_spans: dict[str, Any]) -> list[SpanRow]:
    rows: list[SpanRow] = []
    for scope_spans in resource_spans.get("scopeSpans") or ():
        for span in scope_spans.get("spans") or ():
            attributes = span.get("attributes") or ()
            keys = {kv["key"] for kv in attributes}
            name = span.get("name") or ""
            rows.append(SpanRow(
                _json_id(span["traceId"], 16), _json_id(span["spanId"], 8), _json_id(span.get("parentSpanId"), 8),
                name, int(span.get("endTimeUnixNano") or 0), keys,
                _json_int(_json_value(attributes, OP_ID)) if name == ROOT_SPAN else None,
                _json_value(attributes, OI_KIND_KEY).get("stringValue", "") if OI_KIND_KEY in keys else None,
                _json_status_code(span.get("status")),
            ))
    return rows


def _json_status_code(status: dict[str, Any] | None) -> int:
    """A span's status code, written as the enum's name or its number; 0 (unset) when absent."""
    code = status.get("code", 0) if status else 0
    return _STATUS_CODES.get(code, 0) if isinstance(code, str) else int(code)


def _json_resource(resource: dict[str, Any]) -> ResourceInfo:
    attributes = resource.get("attributes") or ()
    honeyhive = any(kv["key"].startswith(HONEYHIVE_PREFIXES) for kv in attributes)
    run_id = _json_value(attributes, RUN_ID).get("stringValue", "")
    service = _json_value(attributes, SERVICE_NAME).get("stringValue", "")
    return ResourceInfo(run_id, service, honeyhive)


def _json_id(value: str | None, size: int) -> bytes:
    """A trace or span id: hex as OTLP/JSON specifies, or base64 as protobuf's JSON mapping has it."""
    if not value:
        return b""
    try:
        decoded = bytes.fromhex(value) if len(value) == 2 * size else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"id {value!r} is neither {size}-byte hex nor base64") from None
    if len(decoded) != size:
        raise ValueError(f"id {value!r} is {len(decoded)} bytes, not {size}")
    return decoded


def _json_value(attributes: Any, key: str) -> dict[str, Any]:
    for kv in attributes:
        if kv["key"] == key:
            return kv.get("value") or {}
    return {}


def _json_int(value: dict[str, Any]) -> int | None:
    raw = value.get("intValue", value.get("stringValue"))  # int64 comes as a string, or a number
    if isinstance(raw, int) or (isinstance(raw, str) and _is_int_text(raw)):
        return int(raw)
    return None


def _is_int_text(text: str) -> bool:
    """'12' or '-3': an integer written as text (OTLP/JSON's int64, or a tracer that writes
    every attribute as JSON text, as MLflow does); warm-up op_ids are negative."""
    return text.isdigit() or (text[:1] == "-" and text[1:].isdigit())
