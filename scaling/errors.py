"""The one exception type for errors a user can cause."""


class ArchScaleError(ValueError):
    """A user error: a bad spec field, an unknown preset, a missing dataset, an impossible budget.

    ``field`` names what is wrong (e.g. ``"cardinality"``); the message says what is allowed.
    The command line prints ``str(error)`` on one line and exits with status 2.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def yaml_problem(error) -> str:
    """A YAML parse error in a few words with its place: 'line 3, column 5: expected ',' or ']''."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem
