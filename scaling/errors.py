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

    def __reduce__(self):
        """Rebuilt from (field, message): copied and pickled whole, as Ray does to a trial's error."""
        return type(self), (self.field, self.message)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

