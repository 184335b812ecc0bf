"""One error type for every bad input: the CLI prints its message as a single line, never a traceback."""

#: longest message a user sees (a garbage input line must not turn into a megabyte of error text)
MAX_MESSAGE = 360


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, shortened in the middle to at most `limit` characters."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    keep = limit - 5
    return f"{text[: keep * 2 // 3]} ... {text[-(keep - keep * 2 // 3):]}"


class PimsimError(Exception):
    """A user-facing error: bad config, trace or argument. `str(err)` is one line naming file, field and fix."""

    def __init__(self, message: str):
        super().__init__(clip(message))  # always one short line
