"""Image references: ``[registry[:port]/]repository[:tag][@digest]``, docker-normalised."""

from __future__ import annotations

import re

import attrs

from ._digest import is_digest
from .errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$"
)


@attrs.frozen
class Reference:
    """A parsed image reference. ``tag`` or ``digest`` (or both) is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def object(self) -> str:
        """What goes after /manifests/: the digest when known, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return attrs.evolve(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return attrs.evolve(self, digest=digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """The short docker form: ``busybox:latest`` for ``docker.io/library/busybox:latest``."""
        repo = self.repository
        out = repo.removeprefix("library/") if self.registry == DOCKER_HUB else self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse a reference the way docker does (``busybox`` is ``docker.io/library/busybox:latest``)."""
    if not text or len(text) > 512 or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    rest = text.removeprefix("docker://")
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise InvalidReference(f"invalid reference format: bad digest in {text!r}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference format: bad tag in {text!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, repository = first, remainder
        if not _HOST_RE.match(registry):
            raise InvalidReference(f"invalid reference format: bad registry host in {text!r}")
    else:
        registry, repository = DOCKER_HUB, rest
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO_RE.match(repository) or len(registry) + len(repository) > 254:
        raise InvalidReference(f"invalid reference format: repository name must be lowercase in {text!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, repository, tag, digest)


def same_image_name(a: str, b: str) -> bool:
    """True when two reference strings name the same image once normalised."""
    try:
        return parse_reference(a) == parse_reference(b)
    except InvalidReference:
        return False
