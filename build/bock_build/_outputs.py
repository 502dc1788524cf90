"""--output: oci-archive:FILE and docker-archive:FILE through bock-image, oci:DIR as a layout."""

from __future__ import annotations

import shutil


def write_output(store, ref: str, kind: str, dest: str) -> None:
    if kind in ("oci-archive", "docker-archive"):
        from bock_image import save_archive

        save_archive(store, [ref], dest, kind)
        return
    from bock_image import Descriptor, Store

    out = Store(dest)
    desc = store.resolve(ref)
    manifest = store.read_json(desc)
    for d in [manifest["config"], *manifest.get("layers", [])]:
        if not out.has_blob(d["digest"], d["size"]):
            target = out.blob_path(d["digest"])
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(store.blob_path(d["digest"]), tmp)
            out.commit_file(tmp, d["digest"])
    out.put_blob(store.read_blob(desc.digest), desc.digest, desc.size, desc.mediaType)
    name = ref if not ref.startswith("sha256:") else None
    out.add_image(name, Descriptor(desc.mediaType, desc.digest, desc.size))
