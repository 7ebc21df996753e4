"""What a run against the real APIs will send, said before it sends: calls and tokens.

Calls are counted exactly from the run plan (measured operations, the warm-up once per
replica process and one priming call per worker process, for each arm). Tokens are an estimate, and labelled so: input from the
prompts' characters (~4 per token, the usual rule for English text), output as the sum of
the requested max_tokens, an upper bound. Past the profile's cap a run needs `--yes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loadgen.errors import ExitCode, UserError
from loadgen.plan import ModePlan
from loadgen.profile import Profile
from loadgen.prompts import profile_prompt
from loadgen.schedule import profile_offsets

if TYPE_CHECKING:
    from rich.console import Console

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


def plan_budget(modes: list[ModePlan]) -> Budget:
    """Calls and tokens the whole run sends: every mode, provider and arm of its plan."""
    parts = [_mode_budget(mode) for mode in modes]
    if len(parts) == 1:
        return parts[0]
    if any(part.calls is None for part in parts):
        return next(part for part in parts if part.calls is None)
    providers = dict.fromkeys(name for part in parts for name in part.per_provider)
    return Budget(
        calls=sum(part.calls for part in parts),
        input_tokens=sum(part.input_tokens for part in parts),
        output_tokens_max=sum(part.output_tokens_max for part in parts),
        per_provider={name: sum(part.per_provider.get(name, 0) for part in parts) for name in providers},
    )


def _mode_budget(mode: ModePlan) -> Budget:
    profile = mode.profile
    operations = measured_operations(profile)
    if operations is None:
        return Budget(None, None, None, per_provider={fleet.provider: None for fleet in mode.fleets},
                      duration_s=profile.duration)
    input_chars = output_tokens = 0
    per_provider: dict[str, int] = {}
    for fleet in mode.fleets:
        # Each replica process primes once per shard and runs the warm-up before its first
        # block; the measured operations are run once, over all of them. Every arm alike.
        ops = [(op_id, False) for op_id in range(operations)]
        ops += [(op_id, True) for op_id in range(profile.warmup_operations)] * fleet.replicas
        ops += [(0, True)] * (fleet.shards * fleet.replicas)  # the priming call repeats warm-up op 0
        for op_id, warmup in ops:
            prompt = profile_prompt(profile, op_id, warmup=warmup)
            input_chars += (len(prompt.system) + sum(len(text) for _, text in prompt.turns)) * len(fleet.arms)
            output_tokens += prompt.max_tokens * len(fleet.arms)
        per_provider[fleet.provider] = len(ops) * len(fleet.arms)
    return Budget(calls=sum(per_provider.values()), input_tokens=round(input_chars / CHARS_PER_TOKEN),
                  output_tokens_max=output_tokens, per_provider=per_provider)


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


def confirm_real_run(modes: list[ModePlan], profile: Profile, err: Console, confirmed: bool) -> None:
    """Say what the run will send to the paid APIs; past the profile's cap, refuse without --yes."""
    budget = plan_budget(modes)
    err.print(f"real APIs: this run plans {budget.describe()}", highlight=False, soft_wrap=True)
    reason = over_cap(budget, profile)
    if reason and not confirmed:
        raise UserError(f"{reason}; pass --yes to send them, or shorten the run", ExitCode.USAGE)
