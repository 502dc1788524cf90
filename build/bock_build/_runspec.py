"""The runtime spec (config.json) of a RUN step: the image config's env/user/workdir, the command in
shell or exec form, networking none (a new netns) or host, and the RUN mounts (cache, bind, tmpfs,
secret). Mount points the runtime had to create are removed from the upper dir afterwards, so
secrets and mounts leave nothing in the layer."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import BuildError


class RunSpec:
    def __init__(
        self, builder, stage, state, step, rootfs: Path, tmp: Path, stack: contextlib.ExitStack
    ) -> None:
        self.b, self.stage, self.state, self.step = builder, stage, state, step
        self.rootfs, self.tmp, self.stack = rootfs, tmp, stack
        self.spec: dict[str, Any] = {}

    def prepare(self, mounts: list[dict[str, Any]]) -> list[str]:
        from bock_image import default_spec, resolve_user

        st, cfg = self.state, self.state.cfg
        spec = default_spec()
        spec["root"] = {"path": str(self.rootfs), "readonly": False}
        spec["hostname"] = "bock-build"
        proc = spec["process"]
        proc["noNewPrivileges"] = False
        cmd = self.step.args["command"]
        script_mount = None
        if isinstance(cmd, dict):  # a heredoc script with a shebang: executed as a file under /dev
            script = self.tmp / "script"
            script.write_text(cmd["script"])
            os.chmod(script, 0o755)
            script_mount = {"destination": "/dev/pipes/script", "type": "bind", "source": str(script),
                            "options": ["rbind", "ro"]}  # fmt: skip
            proc["args"] = ["/dev/pipes/script"]
        else:
            proc["args"] = list(cmd) if isinstance(cmd, list) else [*st.shell, cmd]
        env = st.env()
        for k, v in st.args.items():
            env.setdefault(k, v)  # ENV overrides ARG
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        try:
            uid, gid, extra, home = resolve_user(self.rootfs, cfg.get("User", ""))
        except Exception as exc:
            raise BuildError(f"{self.step.describe()}: {exc}") from None
        env.setdefault("HOME", home or "/root" if uid == 0 else home or "/")
        proc["user"] = {"uid": uid, "gid": gid}
        if extra:
            proc["user"]["additionalGids"] = extra
        cwd = cfg.get("WorkingDir") or "/"
        proc["cwd"] = cwd
        wd = self.rootfs / cwd.lstrip("/")
        if not wd.exists():
            wd.mkdir(parents=True, exist_ok=True)  # WORKDIR creates the directory (it enters this layer)
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
        _limit_rlimits(spec)
        spec["linux"].pop("resources", None)
        network = self.step.args["network"]
        if network == "host":
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
            for f in ("/etc/resolv.conf", "/etc/hosts"):
                if os.path.exists(f):
                    mounts = [*mounts, {"type": "_file", "target": f, "source": f}]
        created: list[str] = []
        for m in mounts:
            spec_mount, extra_env = self._mount(m)
            if spec_mount is None:
                continue
            created += self._missing(spec_mount["destination"])
            spec["mounts"].append(spec_mount)
            env.update(extra_env)
        if script_mount:
            spec["mounts"].append(script_mount)  # /dev is a tmpfs: the mount point leaves no trace
        proc["env"] = [f"{k}={v}" for k, v in env.items()]
        self.spec = spec
        return created

    def _missing(self, target: str) -> list[str]:
        """Path components of a mount target that do not exist yet (the runtime will create them)."""
        parts = [p for p in target.split("/") if p]
        out = []
        for i in range(len(parts)):
            rel = "/".join(parts[: i + 1])
            if not os.path.lexists(self.rootfs / rel):
                out.append(rel)
        return out

    def cleanup_mountpoints(self, upper: Path, created: list[str]) -> None:
        for rel in sorted(set(created), key=lambda r: -r.count("/")):
            p = upper / rel
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    p.rmdir()  # only when empty: the step may have written there
                elif p.is_file() and p.stat().st_size == 0:
                    p.unlink()

    def _mount(self, m: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
        kind = m["type"]
        target = m.get("target", "")
        if kind == "_file":
            return {
                "destination": target,
                "type": "bind",
                "source": m["source"],
                "options": ["rbind", "ro"],
            }, {}
        if kind == "tmpfs":
            opts = ["nosuid", "nodev"] + ([f"size={m['size']}"] if m.get("size") else [])
            return {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}, {}
        if kind == "cache":
            cid = m.get("id") or target
            base = self.b.store.root / ".bock-build" / "cache-mounts"
            d = base / hashlib.sha256(cid.encode()).hexdigest()[:32]
            if not d.exists():
                d.mkdir(parents=True, exist_ok=True)
                os.chmod(d, int(str(m.get("mode", "755")), 8))
                os.chown(d, int(m.get("uid", 0)), int(m.get("gid", 0)))
            if m.get("sharing") == "locked":
                fd = os.open(f"{d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                self.stack.callback(os.close, fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            if m.get("from") or m.get("source"):
                raise BuildError("RUN --mount=type=cache with from/source is not supported by bock-build")
            return {"destination": target, "type": "bind", "source": str(d), "options": ["rbind", "rw"]}, {}
        if kind == "secret":
            sid = m.get("id") or os.path.basename(target)
            secret = self.b.opts.secrets.get(sid)
            required = str(m.get("required", "false")).lower() == "true"
            if secret is None:
                if required:
                    raise BuildError(
                        f"secret {sid!r} is required by {self.step.describe()} but was not given (--secret id={sid},src=FILE)"
                    )
                return None, {}
            src = secret.get("src")
            if src is None:
                value = os.environ.get(secret.get("env", sid), "")
                src = str(self.tmp / f"secret-{os.urandom(4).hex()}")
                with open(src, "w") as f:
                    f.write(value)
                os.chmod(src, 0o400)
            if m.get("env"):
                with open(src) as f:
                    env_value = f.read()
                extra = {m["env"]: env_value}
                if not m.get("target"):
                    return None, extra
            else:
                extra = {}
            return {"destination": target or f"/run/secrets/{sid}", "type": "bind", "source": src,
                    "options": ["rbind", "ro"]}, extra  # fmt: skip
        # bind
        source = m.get("source", "")
        rw = str(m.get("rw", "false")).lower() == "true"
        if m.get("from"):
            dep = self.b._stage_ref(m["from"], self.stage.index)
            if dep is not None:
                snaps = self.b._stage_state(dep.index).snaps
            else:
                from ._store_adapter import layer_snapshots

                snaps = layer_snapshots(
                    self.b.store, [(d, None) for d in self.b._from_image_layers(m["from"])]
                )
            from ._rootfs import ro_view

            root = str(self.stack.enter_context(ro_view(snaps, self.tmp)))
            what = f"stage {m['from']}"
        else:
            root, what = str(self.b.opts.context), "context"
        from ._context import resolve_in_root

        path = resolve_in_root(root, source, what=what)
        if not os.path.exists(path):
            raise BuildError(f"RUN --mount=type=bind: source {source!r} not found in the {what}")
        if rw:  # writes are discarded: bind a private copy
            copy = self.tmp / f"bind-{os.urandom(4).hex()}"
            if os.path.isdir(path):
                shutil.copytree(path, copy, symlinks=True)
            else:
                shutil.copy2(path, copy)
            path = str(copy)
        return {
            "destination": target,
            "type": "bind",
            "source": path,
            "options": ["rbind", "rw" if rw else "ro"],
        }, {}


def _limit_rlimits(spec: dict[str, Any]) -> None:
    """No rlimit above the current hard limit (this host lacks CAP_SYS_RESOURCE)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for r in spec["process"]["rlimits"]:
        if r["type"] == "RLIMIT_NOFILE":
            r["hard"] = min(r["hard"], hard)
            r["soft"] = min(r["soft"], r["hard"])
