"""Typed options: a dataclass whose fields are a command's flags, checked one way everywhere.

    @dataclasses.dataclass(frozen=True)
    class TrainConfig:
        eval_every_steps: int = flags.option(500, whole(1), "evaluate this often")

A caller in the same process builds the dataclass (`TrainConfig(job_dir=…, train_steps=1)`);
the command line is derived from it (`add_arguments`, `from_namespace`), and a process we
start gets `to_args(config)`. A bad value stops the caller before anything runs: a
`ConfigError` naming the field (`eval_every_steps must be a whole number of at least 1, got
0`), or on the command line argparse's own line (`census train: error: argument
--eval-every-steps: must be a whole number of at least 1, got '0'`) — as the 2017 Estimator
checked its specs when they were built.
"""
import argparse
import dataclasses
import math
import os


class ConfigError(ValueError):
    """A value an option refuses; the message is one sentence naming the option. `field`: the
    option's field name, `reason`: the sentence without it (None for a command line's error)."""

    def __init__(self, message, field=None, reason=None):
        super().__init__(message)
        self.field, self.reason = field, reason


def whole(least=0, most=None):
    """A check: a whole number from `least` to `most` (inclusive; None: no limit), given as
    an int or as text. Returns the int; raises argparse.ArgumentTypeError."""
    span = f"from {least} to {most}" if most is not None else f"of at least {least}"

    def parse(value):
        number = None
        if isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        if number is None or number < least or (most is not None and number > most):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {value!r}")
        return number
    parse.__name__ = f"whole number {span}"  # what argparse says if the call itself fails
    return parse


def number(above=None, least=None, most=None):
    """A check: a finite number, greater than `above` and/or from `least` to `most`
    (inclusive), where given; an int, a float or text. Returns the float; raises
    argparse.ArgumentTypeError."""
    limits = [f"greater than {above:g}" if above is not None else "",
              f"at least {least:g}" if least is not None else "",
              f"at most {most:g}" if most is not None else ""]
    span = " and ".join(filter(None, limits)) or "finite"

    def parse(value):
        found = math.nan
        if isinstance(value, str):
            try:
                found = float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found = float(value)
        if (not math.isfinite(found) or (above is not None and found <= above)
                or (least is not None and found < least) or (most is not None and found > most)):
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {value!r}")
        return found
    parse.__name__ = f"number {span}"
    return parse


PORT = whole(1, 65535)


def option(default=dataclasses.MISSING, check=None, help=None, choices=None, many=False):
    """A dataclass field that is also a flag (`--name-with-dashes`): its `default` (none:
    required), `check` (a `whole`/`number` check), `choices`, `many` (one or more paths:
    a tuple of str). A bool field defaulting to False is a switch (`--flag`)."""
    return dataclasses.field(default=default, metadata={
        "check": check, "help": help, "choices": choices, "many": many})


def flag(field):
    """The flag of a dataclass field: `--eval-every-steps` for eval_every_steps."""
    return "--" + field.name.replace("_", "-")


def _value(field, value):
    """`value` as field `field` holds it, checked; raises ConfigError."""
    meta = field.metadata
    if value is None:
        if field.default is dataclasses.MISSING:
            raise ConfigError(f"{field.name} is required")
        if field.default is not None:
            raise ConfigError(f"{field.name} must be given (default {field.default!r}), "
                              "not None")
        return None
    if meta.get("many"):
        items = (value,) if isinstance(value, (str, os.PathLike)) else tuple(value)
        if not items:
            raise ConfigError(f"{field.name} needs at least one path")
        return tuple(_text(field, item) for item in items)
    if isinstance(field.default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{field.name} must be True or False, got {value!r}")
        return value
    if meta.get("check"):
        try:
            return meta["check"](value)
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{field.name} {e}", field.name, str(e)) from None
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            reason = f"must be one of {', '.join(meta['choices'])}, got {value!r}"
            raise ConfigError(f"{field.name} {reason}", field.name, reason)
        return value
    return _text(field, value)


def _text(field, value):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ConfigError(f"{field.name} must be a non-empty str (or a path), got {value!r}")
    return os.fspath(value)


def check(config):
    """Check and normalise every field of the dataclass `config` (call it from
    `__post_init__`): ints for whole numbers, floats for numbers, str for paths, tuples of str
    for `many`. Raises ConfigError."""
    for field in dataclasses.fields(config):
        object.__setattr__(config, field.name, _value(field, getattr(config, field.name)))


def add_arguments(parser, cls):
    """Add the flags of dataclass `cls` to argparse `parser`, with their defaults, checks and
    help."""
    for field in dataclasses.fields(cls):
        meta, required = field.metadata, field.default is dataclasses.MISSING
        kwargs = {"help": meta.get("help")}
        if kwargs["help"] is None and field.default not in (None, dataclasses.MISSING):
            kwargs["help"] = "(default: %(default)s)"
        if isinstance(field.default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(required=required, default=None if required else field.default,
                          type=meta.get("check"), choices=meta.get("choices"),
                          nargs="+" if meta.get("many") else None)
        parser.add_argument(flag(field), **kwargs)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's `(default: …)` after each flag's help, once: not when the help says its
    default itself, nor for a None default (the flag is simply not given)."""

    def _get_help_string(self, action):
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def from_namespace(cls, namespace):
    """The dataclass `cls` from argparse's `namespace` (other attributes are ignored)."""
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def parse(cls, argv):
    """The dataclass `cls` from a command line `argv` (list of str) of its flags, as a
    process we started reads it. Raises ConfigError with argparse's own sentence."""
    parser = _RaisingParser(allow_abbrev=False, add_help=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(list(argv)))


def to_args(config):
    """The command line (list of str) that `parse` reads back as `config`: every field not at
    its default, in field order (floats in full, as repr writes them)."""
    args = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value == field.default or value is None:
            continue
        if isinstance(value, bool):
            args.append(flag(field))
        elif isinstance(value, tuple):
            args += [flag(field), *value]
        else:
            args += [flag(field), repr(value) if isinstance(value, float) else str(value)]
    return args
