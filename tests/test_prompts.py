"""Prompts are a pure function of (seed, op_id): same in any process, for either provider."""

import collections

import pytest

from loadgen.prompts import DOMAIN_NAMES, SIZE_CLASSES, make_prompt, request_body


def test_same_seed_and_op_id_same_prompt():
    assert make_prompt(1, 5, span_size_mode="mixed") == make_prompt(1, 5, span_size_mode="mixed")
    assert make_prompt(1, 5) != make_prompt(2, 5)


def test_every_domain_appears():
    domains = {make_prompt(0, op).domain for op in range(200)}
    assert domains == set(DOMAIN_NAMES)


@pytest.mark.parametrize("mode", ["small", "medium", "large"])
def test_size_class_sets_requested_length(mode):
    low, high = SIZE_CLASSES[mode]
    for op in range(200):
        prompt = make_prompt(3, op, span_size_mode=mode)
        assert prompt.size_class == mode and low <= prompt.max_tokens <= high


def test_mixed_draws_40_40_20():
    counts = collections.Counter(make_prompt(9, op, span_size_mode="mixed").size_class for op in range(10000))
    assert counts["small"] / 10000 == pytest.approx(0.4, abs=0.02)
    assert counts["medium"] / 10000 == pytest.approx(0.4, abs=0.02)
    assert counts["large"] / 10000 == pytest.approx(0.2, abs=0.02)


def test_cap_on_max_tokens():
    assert all(make_prompt(0, op, span_size_mode="large", max_tokens_cap=64).max_tokens == 64 for op in range(20))


def test_conversations_carry_earlier_turns_and_grow_input():
    prompts = [make_prompt(4, op, conversation_share=0.5, max_turns=6) for op in range(2000)]
    later = [p for p in prompts if p.conversation_turn > 1]
    assert 0.45 < len(later) / len(prompts) < 0.55
    assert max(p.conversation_turn for p in prompts) == 6
    roles = [role for role, _ in later[0].turns]
    assert roles[-1] == "user" and roles[:2] == ["user", "assistant"]
    size = lambda p: sum(len(text) for _, text in p.turns)  # noqa: E731
    by_turn = collections.defaultdict(list)
    for p in prompts:
        by_turn[p.conversation_turn].append(size(p))
    means = [sum(v) / len(v) for _, v in sorted(by_turn.items())]
    assert means == sorted(means)  # input grows with the turn


def test_no_conversations_when_share_is_zero():
    assert all(make_prompt(0, op, conversation_share=0).conversation_turn == 1 for op in range(300))


def test_warmup_prompts_are_a_separate_stream():
    assert make_prompt(0, 1, stream="warmup") != make_prompt(0, 1)


def test_both_providers_carry_the_same_content():
    prompt = make_prompt(5, 11, conversation_share=1.0)
    openai_body = request_body("openai", prompt, "m")
    anthropic_body = request_body("anthropic", prompt, "m")
    assert openai_body["messages"][0] == {"role": "system", "content": anthropic_body["system"]}
    assert openai_body["messages"][1:] == anthropic_body["messages"]
    assert openai_body["max_completion_tokens"] == anthropic_body["max_tokens"]
