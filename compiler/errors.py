"""Exception types. Every error tilecc raises on purpose is a TileccError, so the CLI can
tell a user mistake (one clear line) from a bug (traceback).

Exit codes of the `tilecc` command (docs/cli.md "Errors and exit codes" lists the inputs
behind each; usage errors from argparse exit 2 too, a closed stdout 141):

====  ==================  ==========================================================
code  class               meaning
====  ==================  ==========================================================
0                         success
1     TileccError         other tilecc error; also OSError / ValueError from the OS
2     InputError          bad arguments or run inputs (name, shape, dtype, .npz file)
3     ArtifactError       artifact malformed, tampered with, or for another machine
4     LinkError           the C compiler or linker is missing or failed
5     ModelRunError       the compiled model returned a non-zero error code
6     ModelError          the model is invalid (bad protobuf, cycle, undefined value,
                          wrong attribute type, impossible shape)
7     UnsupportedError    the model is valid but uses ops/opsets tilecc cannot import
8     ResourceError       the model would need more memory than the limit allows
9     TuningLogError      a tuning log cannot be used at all
70                        internal error (a bug: rerun with --debug and report it)
130                       interrupted (Ctrl-C)
====  ==================  ==========================================================
"""


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


class ModelError(TileccError, ValueError):
    """The model itself is invalid: unreadable protobuf, cycles, values nobody defines,
    attributes of the wrong type, impossible shapes. The message names the node or value."""

    exit_code = 6


class UnsupportedError(ModelError):
    """The model is well formed but uses something tilecc does not implement (ops, opset
    versions, dtypes). Reported all at once where possible."""

    exit_code = 7


class ResourceError(TileccError, MemoryError):
    """The model would need more memory than allowed (checked before allocating; the limit is
    `memory_limit()`)."""

    exit_code = 8


MEMORY_LIMIT_ENV = "TILECC_MAX_MEMORY_BYTES"


def memory_limit() -> int:
    """Largest single buffer (tensor, initializer total, workspace) tilecc agrees to allocate:
    $TILECC_MAX_MEMORY_BYTES, else half of this machine's physical memory. Checked before
    allocating, so an absurd shape is a ResourceError instead of a MemoryError or an OOM kill."""
    import os

    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        try:
            return max(int(env), 0)
        except ValueError:
            raise InputError(f"{MEMORY_LIMIT_ENV}={env!r} is not a byte count; set an "
                             "integer") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def check_bytes(nbytes: int, what: str) -> None:
    """Refuse a buffer of `nbytes` (an exact Python int) above memory_limit()."""
    limit = memory_limit()
    if nbytes > limit:
        raise ResourceError(f"{what} needs {format_bytes(nbytes)}, over the "
                            f"{format_bytes(limit)} limit; fix the shape, or raise the limit "
                            f"with {MEMORY_LIMIT_ENV}=BYTES")


class TuningLogError(TileccError):
    """A tuning log cannot be used at all (single bad lines are skipped with a warning)."""

    exit_code = 9


# Codes returned by <name>_init / <name>_run (C ABI, emitted by codegen/aot.py). Kept here so
# the Python runtime's messages and the docs agree with the generated code.
RUN_ERROR_CODES = {
    1: "params_size does not match the model (init)",
    2: "model not initialised: call <name>_init first",
    3: "inputs array or one of its pointers is NULL",
    4: "outputs array or one of its pointers is NULL",
    5: "workspace is NULL but the model needs one",
    6: "params pointer is NULL (init)",
}
