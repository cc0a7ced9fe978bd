"""The one exception type that the CLI turns into a one-line error."""


class DseError(Exception):
    """Bad input: a message that says what is wrong and where. The CLI prints it without a traceback."""
