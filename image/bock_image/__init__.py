"""bock-image: an OCI image store, a distribution-spec registry client and a bundle maker.

Public API (everything else lives in private ``_modules``)::

    Store(root)                 OCI image layout; resolve/manifest/config/layers/put_blob/
                                add_image/tag/rm/gc/verify/snapshot/rootfs
    RegistryClient(...)         pull/push/inspect/tags against a v2 registry
    bundle(store, ref, dir)     runtime bundle (rootfs + config.json); remove_bundle(dir)
    import_rootfs(store, src, ref)   one-layer image from a tarball or directory
    save/load                   oci-archive and docker-archive
    ImageError and subclasses   the one exception hierarchy (bock_image.errors)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AuthError,
    BundleError,
    DigestMismatch,
    ImageError,
    InvalidReference,
    NotFound,
    RegistryError,
    StoreError,
    UnsafeLayer,
    UnsupportedMediaType,
)

# Imported on first use so that `bock-image list` does not pay for httpx, tarfile and friends.
_LAZY = {
    "export_rootfs": "_archive",
    "load_archive": "_archive",
    "save_archive": "_archive",
    "Bundle": "_bundle",
    "bundle": "_bundle",
    "default_spec": "_bundle",
    "remove_bundle": "_bundle",
    "resolve_user": "_bundle",
    "runtime_spec": "_bundle",
    "import_rootfs": "_layers",
    "new_config": "_layers",
    "write_image": "_layers",
    "write_layer": "_layers",
    "Descriptor": "_models",
    "Platform": "_models",
    "Reference": "_reference",
    "parse_reference": "_reference",
    "RegistryClient": "_registry",
    "Rootfs": "_snapshots",
    "release_rootfs": "_snapshots",
    "DEFAULT_ROOT": "_store",
    "Store": "_store",
    "default_root": "_store",
}

if TYPE_CHECKING:
    from ._archive import export_rootfs, load_archive, save_archive
    from ._bundle import Bundle, bundle, default_spec, remove_bundle, resolve_user, runtime_spec
    from ._layers import import_rootfs, new_config, write_image, write_layer
    from ._models import Descriptor, Platform
    from ._reference import Reference, parse_reference
    from ._registry import RegistryClient
    from ._snapshots import Rootfs, release_rootfs
    from ._store import DEFAULT_ROOT, Store, default_root


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bock_image' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ROOT",
    "AuthError",
    "Bundle",
    "BundleError",
    "Descriptor",
    "DigestMismatch",
    "ImageError",
    "InvalidReference",
    "NotFound",
    "Platform",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "Rootfs",
    "Store",
    "StoreError",
    "UnsafeLayer",
    "UnsupportedMediaType",
    "bundle",
    "default_root",
    "default_spec",
    "export_rootfs",
    "import_rootfs",
    "load_archive",
    "new_config",
    "parse_reference",
    "release_rootfs",
    "remove_bundle",
    "resolve_user",
    "runtime_spec",
    "save_archive",
    "write_image",
    "write_layer",
]
