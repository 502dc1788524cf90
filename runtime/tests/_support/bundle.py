"""OCI bundles on a private copy of the busybox rootfs, configured from ``bock spec``."""

from __future__ import annotations

import copy
import json
import os


class Bundle:
    """``path``/config.json + ``path``/rootfs. Edit ``config`` then :meth:`save`."""

    def __init__(self, path: str, config: dict, rootfs: str) -> None:
        self.path = path
        self.config = config
        self.rootfs = rootfs
        self.out_path = os.path.join(path, "container.out")  # the container's stdio (create)
        self.save()

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def save(self) -> Bundle:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def args(self, *argv: str) -> Bundle:
        self.config["process"]["args"] = list(argv)
        return self.save()

    def sh(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)

    def output(self) -> str:
        """What the container wrote to its stdio (``create``-started containers)."""
        try:
            with open(self.out_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def namespaces(self) -> list[dict]:
        return self.config["linux"]["namespaces"]

    def set_namespace(self, kind: str, path: str | None = None) -> Bundle:
        """Add (or replace) a namespace entry; ``path`` joins an existing one."""
        nss = [n for n in self.namespaces() if n["type"] != kind]
        nss.append({"type": kind, **({"path": path} if path else {})})
        self.config["linux"]["namespaces"] = nss
        return self.save()

    def drop_namespace(self, kind: str) -> Bundle:
        self.config["linux"]["namespaces"] = [n for n in self.namespaces() if n["type"] != kind]
        return self.save()

    def add_mount(self, destination: str, type: str, source: str, options: list[str] | None = None) -> Bundle:
        m = {"destination": destination, "type": type, "source": source}
        if options is not None:
            m["options"] = options
        self.config["mounts"].append(m)
        return self.save()


def make_config(base: dict, argv: list[str] | None = None) -> dict:
    config = copy.deepcopy(base)
    config["process"]["terminal"] = False
    if argv is not None:
        config["process"]["args"] = list(argv)
    return config
