"""The one exception tree. Every error the package raises on purpose is a ``PennySLMError``.

    PennySLMError
    ├── ConfigError(ValueError)        a config file or block is wrong; the message names the JSON path
    ├── InputError(ValueError)         text handed to a module cannot be used (wrong type, empty where not allowed)
    ├── ModelNotFoundError(FileNotFoundError)   no built artifact; says which command builds it
    ├── ChecksumError(ValueError)      an artifact file does not match its manifest's sha256
    ├── RegistryError(ValueError)      unknown model/version, or a regression gate refused activation
    ├── NotLoadedError(RuntimeError)   a module was used before ``load()``
    ├── ParityError(ValueError)        an exported graph disagrees with the torch model it came from
    ├── MissingDependencyError(ImportError)  a training/export extra is not installed; says what to pip install
    ├── EndpointError(ConnectionError)  an LLM endpoint failed after retries (HTTP status, timeout, malformed reply)
    ├── GenerationError(ValueError)    generated text cannot be used (e.g. not the requested JSON after one retry)
    └── DataSourceError(ValueError)    the data-source manifest is wrong (the message names the source and field),
                                       or a requested source is unknown

The CLI maps every ``PennySLMError`` to exit code 2 and a one-line message.
"""

from __future__ import annotations


class PennySLMError(Exception):
    """Root of every error penny-slm raises on purpose."""


class ConfigError(PennySLMError, ValueError):
    """A config file, block or entry is wrong; the message (and ``path``) names the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}" if path else problem)


class InputError(PennySLMError, ValueError):
    """Text or a file handed to penny-slm cannot be used; the message says which and why."""


class ModelNotFoundError(PennySLMError, FileNotFoundError):
    """No built artifact where one is needed; the message names the command that builds it."""


class ChecksumError(PennySLMError, ValueError):
    """An artifact file is missing or does not match its manifest's sha256; rebuild or roll back."""


class RegistryError(PennySLMError, ValueError):
    """An unknown module, adapter, model or version (the known ones are listed), or a regression gate refused activation."""


class NotLoadedError(PennySLMError, RuntimeError):
    """A module (or the layer's controls) was used before ``load()``."""


class ParityError(PennySLMError, ValueError):
    """An exported ONNX graph disagrees with the torch model it came from; ``max_diff`` per output."""

    def __init__(self, message: str, max_diff: dict[str, float]) -> None:
        self.max_diff = max_diff
        super().__init__(f"{message}; max |diff| per output: {max_diff}")


class MissingDependencyError(PennySLMError, ImportError):
    """An optional extra (training, export, PostgreSQL) is not installed; the message says what to pip install."""


class EndpointError(PennySLMError, ConnectionError):
    """An OpenAI-compatible endpoint could not give an answer; ``status`` is the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class GenerationError(PennySLMError, ValueError):
    """Generated text cannot be used, e.g. not the requested JSON after one retry."""


class DataSourceError(PennySLMError, ValueError):
    """A ``sources.json`` entry is malformed (``path`` names the source and field) or a source name is unknown."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}" if path else problem)
