"""The run plan: load models become modes, each with its row label and its own streaming."""

from loadgen.plan import mode_label, mode_profiles, plan_run
from loadgen.profile_files import load_profile


def test_a_mode_may_stream_where_the_profile_does_not():
    # streaming and not in one run: the same rate twice, the second streamed, each its own rows
    profile = load_profile(None, {"provider": "openai", "load": {"kind": "constant", "rate": 10},
                                  "modes": [{"kind": "constant", "rate": 10, "stream": True}]})
    modes = mode_profiles(profile)
    assert [mode.stream for mode in modes] == [False, True]
    assert [mode.mode for mode in plan_run(profile, cores=2)] == ["rate 10/s constant", "rate 10/s constant stream"]


def test_without_a_mode_of_its_own_the_profile_is_its_one_mode():
    profile = load_profile(None, {"stream": True})
    assert mode_profiles(profile) == [profile] and mode_label(profile.load) == "rate 10/s constant"
