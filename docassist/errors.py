"""One exception family for everything a user can cause.

Each class carries its exit code; the CLI prints ``docassist: error: <message>`` on stderr and
exits with that code, never a traceback. The codes are documented in README.md and the man page.
"""

EXIT_OK = 0
EXIT_ERROR = 1            # unexpected internal failure (a bug): one line, and the log path if any
EXIT_USAGE = 2            # bad command line (click's own code)
EXIT_INPUT = 3            # missing/unreadable/empty/binary input, bad document
EXIT_PASSWORD = 4         # encrypted PDF: password missing or wrong
EXIT_NO_TEXT = 5          # no text layer (scanned PDF): OCR first
EXIT_MODEL = 6            # model file: not GGUF, old version, truncated, unsupported arch/type, none configured
EXIT_GPU = 7              # no adapter, missing feature, device lost
EXIT_GPU_MEMORY = 8       # model or context does not fit in GPU memory
EXIT_NETWORK_BLOCKED = 9  # the no-network guard stopped an attempt to reach the network
EXIT_TASK = 10            # a task failed closed (e.g. redaction's model layer failed): nothing written
EXIT_INTERRUPTED = 130    # Ctrl-C

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "internal error",
    EXIT_USAGE: "bad command line",
    EXIT_INPUT: "bad input (missing, empty, unreadable or binary)",
    EXIT_PASSWORD: "encrypted PDF: password missing or wrong",
    EXIT_NO_TEXT: "no text layer (scanned PDF): run OCR first",
    EXIT_MODEL: "model file problem (not GGUF, unsupported, truncated) or no model configured",
    EXIT_GPU: "GPU problem (no adapter, missing feature, device lost)",
    EXIT_GPU_MEMORY: "out of GPU memory",
    EXIT_NETWORK_BLOCKED: "a network or process-creation attempt was blocked by the guard",
    EXIT_TASK: "a task failed closed; nothing was written",
    EXIT_INTERRUPTED: "interrupted",
}


class DocassistError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user."""

    exit_code = EXIT_ERROR


class InputError(DocassistError):
    exit_code = EXIT_INPUT


class PasswordError(InputError):
    exit_code = EXIT_PASSWORD


class NoTextError(InputError):
    exit_code = EXIT_NO_TEXT


class ModelError(DocassistError):
    exit_code = EXIT_MODEL


class GPUError(DocassistError):
    exit_code = EXIT_GPU


class GPUMemoryError(GPUError):
    exit_code = EXIT_GPU_MEMORY


class NetworkBlocked(DocassistError):
    exit_code = EXIT_NETWORK_BLOCKED


class TaskError(DocassistError):
    exit_code = EXIT_TASK
