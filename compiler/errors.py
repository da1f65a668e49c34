"""Exception types. Every error tilecc raises on purpose is a TileccError, so the CLI can
tell a user mistake (one clear line) from a bug (traceback)."""


class TileccError(Exception):
    """Base class; the CLI prints these as one line without a traceback."""

    exit_code = 1


class InputError(TileccError, ValueError):
    """Bad arguments or model inputs (wrong name, shape or dtype)."""

    exit_code = 2


class ArtifactError(TileccError):
    """An artifact that cannot be used: malformed, tampered with, or for another machine."""

    exit_code = 3


class LinkError(TileccError):
    """The C compiler or linker is missing or failed."""

    exit_code = 4


class ModelRunError(TileccError, RuntimeError):
    """A compiled model returned a non-zero error code."""

    exit_code = 5

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code
