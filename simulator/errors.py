"""One error type for every bad input: the CLI prints its message as a single line, never a traceback."""


class PimsimError(Exception):
    """A user-facing error: bad config, trace or argument. `str(err)` is one line naming file, field and fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line
