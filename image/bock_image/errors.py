"""The one exception hierarchy of bock-image: everything raised on purpose is an ImageError."""

from __future__ import annotations


class ImageError(Exception):
    """Base class of every error bock-image raises on purpose."""


class InvalidReference(ImageError, ValueError):
    """An image reference, digest or platform string could not be parsed."""


class NotFound(ImageError, LookupError):
    """An image, blob or tag is not in the store (or not in the registry)."""


class DigestMismatch(ImageError):
    """Content does not hash to (or is not the size of) the digest that names it."""


class UnsupportedMediaType(ImageError):
    """A manifest, config or layer has a media type bock-image does not handle."""


class UnsafeLayer(ImageError):
    """A layer tries to write outside its target, or is otherwise malformed."""


class BundleError(ImageError):
    """The image cannot be turned into a runtime bundle (e.g. an unknown user)."""


class StoreError(ImageError):
    """The store is unusable or inconsistent (bad layout, corrupt index, busy lock)."""


class RegistryError(ImageError):
    """A registry answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthError(RegistryError):
    """Authentication with a registry failed (401/403, or no usable credentials)."""
