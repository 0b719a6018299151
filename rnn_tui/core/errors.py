"""The one exception type users see as a clean one-line message (no traceback)."""


class RnnTuiError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class CorpusError(RnnTuiError):
    pass


class CheckpointError(RnnTuiError):
    pass


class ConfigError(RnnTuiError):
    pass
