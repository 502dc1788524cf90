"""The inspect document shared by local and remote inspect (close to ``skopeo inspect``'s)."""

from __future__ import annotations

from typing import Any

from ._models import Descriptor, to_dict


def summarize(
    name: str, desc: Descriptor, manifest: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """An inspect document (close to ``skopeo inspect``'s)."""
    cfg = config.get("config") or {}
    return {
        "Name": name,
        "Digest": desc.digest,
        "MediaType": desc.mediaType,
        "Created": config.get("created"),
        "Author": config.get("author"),
        "Architecture": config.get("architecture"),
        "Os": config.get("os"),
        "Variant": config.get("variant"),
        "Layers": [d["digest"] for d in manifest.get("layers", [])],
        "LayersData": [
            {"MIMEType": d["mediaType"], "Digest": d["digest"], "Size": d["size"]}
            for d in manifest.get("layers", [])
        ],
        "Env": cfg.get("Env") or [],
        "Labels": cfg.get("Labels"),
        "Config": config,
        "Manifest": manifest,
        "ManifestDescriptor": to_dict(desc),
    }
