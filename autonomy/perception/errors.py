"""Exceptions of the perception room."""


class PerceptionError(Exception):
    """Base of every error raised by ``autonomy.perception``."""


class ModelError(PerceptionError):
    """The model file is missing, corrupt, cannot run on the chosen provider, or has outputs we cannot decode."""


class FrameError(PerceptionError):
    """A frame given to the detector is empty, of the wrong shape or of an unsupported dtype."""
