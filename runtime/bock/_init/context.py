"""What the create and exec children share: a keyword-built slotted context record, and the
one-line text a failing child sends back to its parent."""

from __future__ import annotations


class ContextRecord:
    """A record whose fields are its class's ``__slots__``, set by keyword (missing ones are
    None); an unknown keyword is a programming error."""

    __slots__ = ()

    def __init__(self, **kw: object) -> None:
        for name in self.__slots__:
            setattr(self, name, kw.pop(name, None))
        if kw:
            raise TypeError(f"unknown fields {sorted(kw)}")


def failure_text(err: BaseException) -> str:
    """runc's wording for a child's failure: ``strerror: path`` for an OSError that names a
    file, its strerror alone for one that does not, else the exception's text."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__
