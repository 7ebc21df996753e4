"""API keys never reach output."""

from loadgen.redact import MASK, redact, redact_data


def test_env_keys_and_key_shapes_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-FAKE-redaction-test-key")
    monkeypatch.setenv("HH_API_KEY", "hh-secret-value-42")
    text = "auth failed for sk-FAKE-redaction-test-key and hh-secret-value-42 (Bearer abcdefghijkl)"
    cleaned = redact(text)
    assert "redaction-test-key" not in cleaned and "hh-secret" not in cleaned and "abcdefghijkl" not in cleaned
    assert cleaned.count(MASK) == 3


def test_nested_data(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-zzzzzzzzzzzz")
    data = {"a": ["x sk-ant-zzzzzzzzzzzz"], "b": {"c": "sk-ant-zzzzzzzzzzzz"}, "n": 3}
    assert "zzzz" not in str(redact_data(data))
