"""What every check shares: the failure that reads like advice, and the one-line success."""


class CheckFailed(AssertionError):
    """A wrong answer: what is wrong, and a hint. Jupyter shows these two lines instead of a
    traceback; papermill and nbgrader still see a failed cell."""

    label = "Not right yet"

    def __init__(self, problem, hint):
        super().__init__(f"{problem}\nHint: {hint}")
        self.problem, self.hint = problem, hint

    def _render_traceback_(self):  # IPython's hook for exceptions that print themselves
        return [f"\x1b[31m✗ {self.label}: {self.problem}\x1b[0m", f"  Hint: {self.hint}"]


class NotAnswered(CheckFailed, NotImplementedError):
    """The exercise still holds its stub (`raise NotImplementedError()`)."""

    label = "Not answered yet"


def expect(condition, problem, hint):
    """Raise CheckFailed(problem, hint) unless condition holds."""
    if not condition:
        raise CheckFailed(problem, hint)


def call(fn, *args, what="your function", hint=None, **kwargs):
    """Call the learner's function; turn the stub's NotImplementedError and any crash into a
    CheckFailed that names the call. `hint` for a crash: a text, or (words, text) pairs, the
    first whose words appear in the error's message."""
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
        if isinstance(hint, (list, tuple)):
            hint = next((text for words, text in hint if words in message), None)
        raise CheckFailed(f"calling {what} raised {type(error).__name__}: {message[:300]}",
                          hint or "run your function on its own and read the error; print "
                          "the intermediate values to see where it goes wrong") from error


def passed(message):
    """The short confirmation printed when a check succeeds."""
    print(f"✓ {message}")
