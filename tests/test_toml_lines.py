"""Where each key of a TOML text is: headers, dotted keys, arrays, arrays of tables, inline tables."""

from loadgen.toml_lines import key_lines


def test_key_lines_follows_headers_dotted_keys_inline_tables_and_arrays_of_tables():
    text = (
        'name = "x"\n'                           # 1
        'notes = """\n[not.a.table]\nk = 1\n"""\n'  # 2-5: a multi-line string is not keys
        "load.kind = 'constant'\n"               # 6
        "[tracing]\n"                            # 7
        "arms = [\n  'baseline',\n  'otel',\n]\n"  # 8-11
        "[[mock.faults]]\n"                      # 12
        "kind = 'stall'\n"                       # 13
        "[[mock.faults]]\n"                      # 14
        "kind = 'http_429'  # a comment\n"       # 15
        "[thresholds]\n"                         # 16
        "latency_p95_ms = { pass = 1, warn = 2 }\n"  # 17
    )
    lines = key_lines(text)
    assert lines[("name",)] == 1 and lines[("notes",)] == 2 and ("not",) not in lines
    assert lines[("load",)] == lines[("load", "kind")] == 6
    assert (lines[("tracing",)], lines[("tracing", "arms")], lines[("tracing", "arms", 1)]) == (7, 8, 10)
    assert (lines[("mock", "faults", 0)], lines[("mock", "faults", 1)], lines[("mock", "faults", 1, "kind")]) == (12, 14, 15)
    assert lines[("thresholds", "latency_p95_ms", "warn")] == 17
