"""Media types bock-image understands (OCI image-spec and their Docker schema2 equivalents)."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# layer media type -> compression ("none", "gzip", "zstd")
LAYERS = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_FOREIGN_GZIP: "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}

# What a registry client sends in Accept when fetching a manifest.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])


def layer_compression(media_type: str) -> str:
    from .errors import UnsupportedMediaType

    try:
        return LAYERS[media_type]
    except KeyError:
        raise UnsupportedMediaType(f"unsupported layer media type {media_type!r}")


def check_manifest_type(media_type: str | None) -> None:
    from .errors import UnsupportedMediaType

    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedMediaType(
            "docker schema1 manifests are not supported (legacy format); re-push as schema2"
        )
    if media_type not in INDEXES and media_type not in MANIFESTS:
        raise UnsupportedMediaType(f"unsupported manifest media type {media_type!r}")
