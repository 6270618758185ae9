"""What every check shares: the failure that reads like advice, and the one-line success.

A failure carries its hints in order, from the one that points at the idea (what to look at,
which family of functions) to the one that tells the fix. The first time a problem comes up the
learner reads the first hint; each time the same problem comes back (the check run again and
still failing the same way) the next one, the last one staying. Grading runs each check once,
so a grader reads the first hint.
"""
from collections import Counter

_seen = Counter()  # hints (a tuple) -> how many times that failure has been raised here


def _step(hints):
    """Which of `hints` to show now: one further each time the same failure comes back."""
    step = min(_seen[hints], len(hints) - 1)
    _seen[hints] += 1
    return step


def reset_hints():
    """Start every hint progression again from its first hint."""
    _seen.clear()


class CheckFailed(AssertionError):
    """A wrong answer: what is wrong, and a hint. Jupyter shows these lines instead of a
    traceback; papermill and nbgrader still see a failed cell.

    `hints` run from leading to telling; `hint` is the one shown this time, `step` its
    position (0 for the first)."""

    label = "Not right yet"

    def __init__(self, problem, *hints):
        hints = tuple(h for h in hints if h) or ("",)
        self.problem, self.hints = problem, hints
        self.step = _step(hints) if len(hints) > 1 else 0
        self.hint = hints[self.step]
        super().__init__(f"{problem}\nHint: {self.hint}")

    def __reduce__(self):  # a failure pickled (parallel grading) comes back as it was
        return _rebuild, (type(self), self.problem, self.hints, self.step)

    def _render_traceback_(self):  # IPython's hook for exceptions that print themselves
        lines = [f"\x1b[31m✗ {self.label}: {self.problem}\x1b[0m", f"  Hint: {self.hint}"]
        if self.step < len(self.hints) - 1:
            lines.append(f"  (hint {self.step + 1} of {len(self.hints)}: still stuck? Run the "
                         "check again for a more precise one)")
        return lines


def _rebuild(cls, problem, hints, step):
    """A CheckFailed as it was raised, without counting it again."""
    error = cls.__new__(cls)
    AssertionError.__init__(error, f"{problem}\nHint: {hints[step]}")
    error.problem, error.hints, error.step, error.hint = problem, hints, step, hints[step]
    return error


class NotAnswered(CheckFailed, NotImplementedError):
    """The exercise still holds its stub (`raise NotImplementedError()`)."""

    label = "Not answered yet"


def expect(condition, problem, *hints):
    """Raise CheckFailed(problem, *hints) unless condition holds. `hints`: one or more, from
    the one that leads (what to look at) to the one that tells (the fix)."""
    if not condition:
        raise CheckFailed(problem, *hints)


def call(fn, *args, what="your function", hint=None, **kwargs):
    """Call the learner's function; turn the stub's NotImplementedError and any crash into a
    CheckFailed that names the call. `hint` for a crash: a text, a tuple of texts (leading to
    telling), or (words, text-or-tuple) pairs, the first whose words appear in the error's
    message."""
    expect(callable(fn), f"{what} is not a function (it is {type(fn).__name__})",
           "define it with `def` in the cell above and run that cell")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotAnswered(f"{what} still raises NotImplementedError",
                          "replace `# YOUR CODE HERE` and `raise NotImplementedError()` with "
                          "your code, run the cell, then run this check again") from None
    except CheckFailed:
        raise
    except Exception as error:  # the learner's code crashed: say where, not a traceback
        message = " ".join(str(error).split())
        if isinstance(hint, list) or (isinstance(hint, tuple) and hint and
                                      isinstance(hint[0], tuple)):
            hint = next((text for words, text in hint if words in message), None)
        hints = hint if isinstance(hint, tuple) else (hint,) if hint else (
            "run your function on its own and read the error; print the intermediate values "
            "to see where it goes wrong",)
        raise CheckFailed(f"calling {what} raised {type(error).__name__}: {message[:300]}",
                          *hints) from error


def passed(message):
    """The short confirmation printed when a check succeeds."""
    print(f"✓ {message}")


def count_rows(path):
    """The non-blank lines of a text file (a CSV file's rows)."""
    with open(path) as f:
        return sum(1 for line in f if line.strip())
