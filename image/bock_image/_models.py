"""attrs models of the OCI objects bock-image passes around, with their cattrs converter.

Manifests and configs stay plain dicts inside the store so unknown keys round-trip untouched;
descriptors and platforms are typed because code reasons about them. The converter is built on first
use: importing cattrs costs ~15 ms, which a push of a plain image (see ``descriptor``) does not need.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import attrs

from ._digest import check_digest
from .errors import InvalidReference

if TYPE_CHECKING:
    import cattrs

_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def _check_digest(_inst, _attr, value: str) -> None:
    check_digest(value)


@attrs.frozen
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]``, e.g. ``linux/arm64/v8``."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise InvalidReference(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        machine = os.uname().machine
        arch = _ARCH.get(machine, machine)
        variant = "v8" if arch == "arm64" else ("v7" if machine == "armv7l" else None)
        return cls("linux", arch, variant)

    def matches(self, other: Platform) -> bool:
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        # a missing variant matches any (linux/arm64 == linux/arm64/v8); two different ones do not
        return not (self.variant and other.variant and self.variant != other.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@attrs.frozen
class Descriptor:
    mediaType: str
    digest: str = attrs.field(validator=_check_digest)
    size: int = attrs.field(validator=attrs.validators.ge(0))
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    urls: list[str] | None = None
    artifactType: str | None = None

    @property
    def ref_name(self) -> str | None:
        return (self.annotations or {}).get("org.opencontainers.image.ref.name")

    def with_annotations(self, annotations: dict[str, str] | None) -> Descriptor:
        return attrs.evolve(self, annotations=annotations or None)


_converter: cattrs.Converter | None = None
# descriptor() builds these keys itself when they hold exactly the types it declares
_PLAIN_KEYS = ("mediaType", "digest", "size")
_TYPED_KEYS = ("platform", "urls", "artifactType")


def converter() -> cattrs.Converter:
    """The cattrs converter for Descriptor and Platform (``os.version`` renamed, defaults omitted)."""
    global _converter
    if _converter is None:
        import cattrs
        from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

        conv = cattrs.Converter()
        overrides = {"os_version": override(rename="os.version", omit_if_default=True)}
        conv.register_unstructure_hook(
            Platform, make_dict_unstructure_fn(Platform, conv, _cattrs_omit_if_default=True, **overrides)
        )
        conv.register_structure_hook(Platform, make_dict_structure_fn(Platform, conv, **overrides))
        conv.register_unstructure_hook(
            Descriptor, make_dict_unstructure_fn(Descriptor, conv, _cattrs_omit_if_default=True)
        )
        _converter = conv
    return _converter


def to_dict(obj: Any) -> Any:
    return converter().unstructure(obj)


def descriptor(data: dict[str, Any]) -> Descriptor:
    """Structure a descriptor dict (unknown keys are ignored).

    The common shape (string mediaType and digest, an int size, string annotations, no platform, urls
    or artifactType) is built directly, which gives what cattrs gives for it; anything else, and
    anything the validators refuse, goes through the converter, so its errors read the same."""
    plain = _plain(data)
    if plain is not None:
        return plain
    try:
        return converter().structure(data, Descriptor)
    except (_validation_error(), KeyError, TypeError, ValueError) as exc:
        raise InvalidReference(f"invalid descriptor {data!r}: {exc}") from None


def _plain(data: Any) -> Descriptor | None:
    if type(data) is not dict or any(k in data for k in _TYPED_KEYS):
        return None
    if [type(data.get(k)) for k in _PLAIN_KEYS] != [str, str, int]:
        return None
    ann = data.get("annotations")
    if ann is not None and (
        type(ann) is not dict or not all(type(k) is str and type(v) is str for k, v in ann.items())
    ):
        return None
    try:
        return Descriptor(
            data["mediaType"], data["digest"], data["size"], dict(ann) if ann is not None else None
        )
    except (InvalidReference, ValueError):
        return None  # the converter path raises the usual error


def _validation_error() -> type[Exception]:
    import cattrs

    return cattrs.BaseValidationError
