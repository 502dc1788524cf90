"""The one exception hierarchy of bock-build. Every error the CLI prints is a BuildError."""

from __future__ import annotations


class BuildError(Exception):
    """Base class: anything that stops a build (or a convert / cache command) with a message."""


class BuildfileError(BuildError):
    """A Dockerfile or Bockfile that cannot be parsed or fails the schema: file, line, what was expected."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


class ContextError(BuildError):
    """A COPY/ADD source that is missing, ignored or outside the build context."""


class BaseImageError(BuildError):
    """A FROM (or COPY --from) image that is not in the store."""


class StepFailed(BuildError):
    """A RUN step exited non-zero: the step, the exit code and the tail of its output."""

    def __init__(self, step: str, code: int, tail: list[str]) -> None:
        self.step, self.code, self.tail = step, code, tail
        text = "\n".join(f"  {line}" for line in tail)
        super().__init__(
            f"step {step} failed with exit code {code}" + (f"; last output:\n{text}" if tail else "")
        )


class RuntimeFailure(BuildError):
    """The OCI runtime itself failed (create/start/delete), not the step's command."""


class CacheError(BuildError):
    """Bad arguments to a cache command (size, duration)."""
