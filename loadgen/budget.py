"""What a run against the real APIs will send, said before it sends: calls and tokens.

Calls are counted exactly from the plan (measured operations, warm-up and one priming
call per worker, for each arm). Tokens are an estimate, and labelled so: input from the
prompts' characters (~4 per token, the usual rule for English text), output as the sum of
the requested max_tokens, an upper bound. Past the profile's cap a run needs `--yes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from loadgen.arms import runs_on
from loadgen.profile import Profile
from loadgen.prompts import profile_prompt
from loadgen.schedule import profile_offsets

CHARS_PER_TOKEN = 4


@dataclass
class Budget:
    calls: int | None  # None: a closed-loop run bounded by time, count unknown in advance
    input_tokens: int | None
    output_tokens_max: int | None
    per_provider: dict[str, int | None] = field(default_factory=dict)
    duration_s: float | None = None

    def describe(self) -> str:
        if self.calls is None:
            return (f"the number of calls is not known in advance: closed loop for {self.duration_s:g} s "
                    f"per arm, {', '.join(self.per_provider)}")
        providers = ", ".join(f"{name} {count:,}" for name, count in self.per_provider.items())
        return (f"{self.calls:,} calls ({providers}); estimated ~{self.input_tokens:,} input tokens and "
                f"at most {self.output_tokens_max:,} output tokens (the requested max_tokens)")


def measured_operations(profile: Profile) -> int | None:
    if profile.open_loop:
        return len(profile_offsets(profile))
    return profile.operations


def plan_budget(profile: Profile, cores: int | None = None) -> Budget:
    """Calls and tokens the whole run sends: every mode, provider and arm that applies to it."""
    parts = [_mode_budget(mode, cores) for mode in profile.each_mode()]
    if len(parts) == 1:
        return parts[0]
    if any(part.calls is None for part in parts):
        return next(part for part in parts if part.calls is None)
    return Budget(
        calls=sum(part.calls for part in parts),
        input_tokens=sum(part.input_tokens for part in parts),
        output_tokens_max=sum(part.output_tokens_max for part in parts),
        per_provider={name: sum(part.per_provider[name] for part in parts) for name in parts[0].per_provider},
    )


def _mode_budget(profile: Profile, cores: int | None) -> Budget:
    operations = measured_operations(profile)
    workers = profile.worker_count(cores or os.cpu_count() or 1)
    arms = {provider: sum(1 for arm in profile.tracing.arms if runs_on(arm, provider)) for provider in profile.providers}
    if operations is None:
        return Budget(None, None, None, per_provider={provider: None for provider in arms}, duration_s=profile.duration)
    per_arm_ops = [(op_id, False) for op_id in range(operations)]
    per_arm_ops += [(op_id, True) for op_id in range(profile.warmup_operations)]
    input_chars = output_tokens = 0
    for op_id, warmup in per_arm_ops + [(0, True)] * workers:  # the priming call repeats warm-up op 0
        prompt = profile_prompt(profile, op_id, warmup=warmup)
        input_chars += len(prompt.system) + sum(len(text) for _, text in prompt.turns)
        output_tokens += prompt.max_tokens
    calls_per_arm = len(per_arm_ops) + workers
    runs = sum(arms.values())
    return Budget(
        calls=calls_per_arm * runs,
        input_tokens=round(input_chars / CHARS_PER_TOKEN) * runs,
        output_tokens_max=output_tokens * runs,
        per_provider={provider: calls_per_arm * count for provider, count in arms.items()},
    )


def over_cap(budget: Budget, profile: Profile) -> str | None:
    """Why the run needs --yes, or None when it is within the profile's caps."""
    target = profile.target
    if budget.calls is None:
        return "the number of calls cannot be bounded in advance"
    if budget.calls > target.confirm_above_calls:
        return f"{budget.calls:,} planned calls exceed target.confirm_above_calls = {target.confirm_above_calls:,}"
    tokens = budget.input_tokens + budget.output_tokens_max
    if tokens > target.confirm_above_tokens:
        return f"~{tokens:,} planned tokens exceed target.confirm_above_tokens = {target.confirm_above_tokens:,}"
    return None
