"""TEMPORARY stand-in until helper C's registry lands (issue 11)."""

UNTRACED = ("baseline", "calibration")


def runs_on(arm: str, provider: str) -> bool:
    return arm != "anthropic-native" or provider == "anthropic"


def traces(arm: str) -> bool:
    return arm not in UNTRACED
