"""The platform's base error: the CLI prints these as one clear line instead of a traceback."""


class PlatformError(RuntimeError):
    """An operational failure whose message names the thing and the fix."""
