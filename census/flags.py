"""Types for the numeric flags of every `census` command: a value is checked when it is parsed.

    p.add_argument("--eval-every-steps", type=flags.whole(1))      # 1, 2, 3 …
    p.add_argument("--learning-rate", type=flags.number(above=0))  # any finite x > 0

A bad value stops the command before it does anything, in argparse's own words:
`census train: error: argument --eval-every-steps: must be a whole number of at least 1, got '0'`
(the 2017 Estimator checked its specs the same way, when they were built).
"""
import argparse
import math


def whole(least=0, most=None):
    """An argparse type: a whole number from `least` to `most` (inclusive; None: no limit)."""
    span = f"from {least} to {most}" if most is not None else f"of at least {least}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {text!r}")
        return value
    parse.__name__ = f"whole number {span}"  # what argparse says if the call itself fails
    return parse


def number(above=None, least=None, most=None):
    """An argparse type: a finite number, greater than `above` and/or from `least` to `most`
    (inclusive), where given."""
    limits = [f"greater than {above:g}" if above is not None else "",
              f"at least {least:g}" if least is not None else "",
              f"at most {most:g}" if most is not None else ""]
    span = " and ".join(filter(None, limits)) or "finite"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or (above is not None and value <= above)
                or (least is not None and value < least) or (most is not None and value > most)):
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text!r}")
        return value
    parse.__name__ = f"number {span}"
    return parse


PORT = whole(1, 65535)
