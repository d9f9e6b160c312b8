"""User-facing errors: each carries one line that names the file (and tensor) at fault.

The CLI prints `str(err)` on stderr and exits with code 2, without a traceback.
"""


class CugraphError(Exception):
    """Base of every error caused by the user's input rather than a bug."""


class ConfigError(CugraphError, ValueError):
    pass


class CheckpointError(CugraphError, ValueError):
    pass


class TokenizerError(CugraphError, ValueError):
    pass


class ContextLimitError(CugraphError, ValueError):
    pass


class BackendError(CugraphError, RuntimeError):
    """The requested backend cannot run here (no GPU, no CuPy, out of memory, ...)."""
