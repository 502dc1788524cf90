"""The executor: walks the build graph stage by stage (independent stages in parallel), computes each
step's cache key before doing any work, runs RUN steps as containers and COPY/ADD as direct layer
writes, and writes the final image into the store. It knows nothing of Dockerfile or Bockfile syntax."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from ._cache import Cache
from ._context import HashMemo, select_sources, sources_digest
from ._copy import LayerWriter, copy_sources, fetch_url, parse_chmod, parse_chown
from ._expand import expand
from ._graph import BuildGraph, Stage, Step
from ._ignore import IgnoreRules
from ._layer import commit_layer
from ._rootfs import ro_view, rw_rootfs
from ._run import Runtime
from ._state import StageState, apply_config_step
from ._store_adapter import install_snapshot, layer_snapshots
from .errors import BaseImageError, BuildError, StepFailed

_TIMING = bool(os.environ.get("BOCK_BUILD_TIMING"))
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@attrs.define
class BuildOptions:
    context: Path
    tags: list[str] = attrs.Factory(list)
    build_args: dict[str, str] = attrs.Factory(dict)
    target: str | None = None
    no_cache: bool = False
    runtime: str = "bock"
    jobs: int = 4
    secrets: dict[str, dict[str, str]] = attrs.Factory(dict)  # id -> {"src": path} or {"env": NAME}
    source_date_epoch: int | None = None
    compression: str = "gzip"
    quiet: bool = False
    dockerfile: Path | None = None
    platform: str | None = None  # default for FROM without --platform (selects the image in an index)


@attrs.frozen
class BuildResult:
    manifest: dict[str, Any]  # descriptor of the manifest
    config: dict[str, Any]
    steps: int
    cached: int


def _sha(obj: Any) -> str:
    return (
        "sha256:"
        + hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Builder:
    def __init__(self, store, graph: BuildGraph, options: BuildOptions) -> None:
        self.store = store
        self.graph = graph
        self.opts = options
        self.cache = Cache(store)
        self.work = store.root / ".bock-build" / "tmp"
        self.work.mkdir(parents=True, exist_ok=True)
        self.memo = HashMemo(store.root / ".bock-build" / "context-hashes.json")
        self.ignore = IgnoreRules.load(options.context, options.dockerfile)
        self.runtime = Runtime(
            options.runtime,
            Path("/run/bock-build") / hashlib.sha256(options.runtime.encode()).hexdigest()[:12],
        )
        self.hash_pool = concurrent.futures.ThreadPoolExecutor(4)
        self.committer = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="commit")
        self.pending: list[tuple[str, Path]] = []
        self.cancelled = threading.Event()  # set on SIGINT/SIGTERM: running steps finish, no new ones start
        self.results: dict[int, concurrent.futures.Future] = {}
        self.lock = threading.Lock()
        self.counts = {"steps": 0, "cached": 0}
        self.epoch = options.source_date_epoch
        self.global_args = self._global_args()

    # -- args ------------------------------------------------------------------------------------
    def _global_args(self) -> dict[str, str]:
        from bock_image import Platform

        host = Platform.host()
        plat = f"{host.os}/{host.architecture}" + (f"/{host.variant}" if host.variant else "")
        scope = {
            "BUILDPLATFORM": plat, "BUILDOS": host.os, "BUILDARCH": host.architecture,
            "BUILDVARIANT": host.variant or "", "TARGETPLATFORM": plat, "TARGETOS": host.os,
            "TARGETARCH": host.architecture, "TARGETVARIANT": host.variant or "",
        }  # fmt: skip
        for step in self.graph.global_args:
            for a in step.args["args"]:
                if a["name"] in self.opts.build_args:
                    scope[a["name"]] = self.opts.build_args[a["name"]]
                elif a["default"] is not None:
                    scope[a["name"]] = expand(a["default"], scope)
                else:
                    scope.setdefault(a["name"], "")
        return scope

    # -- graph walk --------------------------------------------------------------------------------
    def _target(self) -> Stage:
        if self.opts.target:
            st = self.graph.stage(self.opts.target)
            if st is None:
                names = ", ".join(s.label for s in self.graph.stages)
                raise BuildError(f"target stage {self.opts.target!r} not found (stages: {names})")
            return st
        return self.graph.stages[-1]

    def _deps(self, stage: Stage) -> set[int]:
        out: set[int] = set()
        refs = [expand(stage.base, self.global_args)]
        for step in stage.steps:
            if step.op == "copy" and step.args.get("from"):
                refs.append(expand(step.args["from"], self.global_args))
            if step.op == "run":
                refs += [m["from"] for m in step.args["mounts"] if m.get("from")]
        for ref in refs:
            dep = self._stage_ref(ref, stage.index)
            if dep is not None:
                out.add(dep.index)
        return out

    def _stage_ref(self, ref: str, before: int) -> Stage | None:
        for s in self.graph.stages[:before]:
            if s.name and s.name.lower() == ref.lower():
                return s
        if ref.isdigit() and int(ref) < before:
            return self.graph.stages[int(ref)]
        return None

    def needed(self) -> list[Stage]:
        target = self._target()
        need: set[int] = set()
        todo = [target.index]
        while todo:
            i = todo.pop()
            if i in need:
                continue
            need.add(i)
            todo.extend(self._deps(self.graph.stages[i]))
        return [s for s in self.graph.stages if s.index in need]

    def build(self) -> BuildResult:
        stages = self.needed()
        try:
            with self.store.using(), concurrent.futures.ThreadPoolExecutor(max(1, self.opts.jobs)) as pool:
                try:
                    for st in stages:  # in order: a stage's dependencies are submitted before it
                        self.results[st.index] = pool.submit(self._build_stage, st)
                    last = self.results[stages[-1].index]
                    # wake up regularly: a signal may land on another thread, and only the main thread
                    # runs Python signal handlers (SIGTERM/SIGINT -> KeyboardInterrupt)
                    while not last.done():
                        concurrent.futures.wait([last], timeout=0.2)
                    final = last.result()
                except KeyboardInterrupt:
                    self.cancelled.set()
                    self.runtime.kill_all()  # running steps fail fast; their finally blocks clean up
                    raise
                for f in self.results.values():
                    f.result()
                layers = [f.result() for f in final.layers]
                self._finish_commits()
                return self._write_image(final, layers)
        finally:
            self._finish_commits()
            self.memo.save()
            self.hash_pool.shutdown()

    def _stage_state(self, index: int) -> StageState:
        return self.results[index].result()

    # -- stages ------------------------------------------------------------------------------------
    def _base_state(self, stage: Stage) -> StageState:
        ref = expand(stage.base, self.global_args)
        dep = self._stage_ref(ref, stage.index)
        if dep is not None:
            parent = self._stage_state(dep.index)
            cfg = json.loads(json.dumps(parent.config))
            onbuild = cfg.get("config", {}).pop("OnBuild", None) or []  # a stage used as a base is an image
            return StageState(
                list(parent.layers), list(parent.snaps), cfg, list(parent.history), parent.key,
                dict(parent.args), list(parent.shell), onbuild=list(onbuild),
            )  # fmt: skip
        from bock_image import Platform

        plat_text = expand(stage.platform, self.global_args) if stage.platform else (self.opts.platform or "")
        try:
            platform = Platform.parse(plat_text) if plat_text else None
        except Exception as exc:
            raise BuildError(
                f"FROM --platform={plat_text} (stage {stage.label}, line {stage.line}): {exc}"
            ) from None
        if ref == "scratch":
            host = platform or Platform.host()
            cfg = {
                "architecture": host.architecture,
                "os": host.os,
                "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
            }
            return StageState([], [], cfg, [], _sha({"scratch": True}), {}, list(DEFAULT_SHELL))
        try:
            manifest_desc = self.store.manifest_descriptor(ref, platform)
            manifest = self.store.read_json(manifest_desc)
        except Exception as exc:
            raise BaseImageError(
                f"base image {ref!r} not found in the store {self.store.root} "
                f"(stage {stage.label}, line {stage.line}): {exc}"
            ) from None
        from bock_image import Descriptor

        cfg_desc = manifest["config"]
        config = self.store.read_json(Descriptor(cfg_desc["mediaType"], cfg_desc["digest"], cfg_desc["size"]))
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        layers = [
            (d, diff_ids[i] if i < len(diff_ids) else None) for i, d in enumerate(manifest.get("layers", []))
        ]
        snaps = layer_snapshots(self.store, layers)
        image_cfg = dict(config.get("config") or {})
        onbuild = image_cfg.pop("OnBuild", None) or []
        shell = image_cfg.get("Shell") or list(DEFAULT_SHELL)
        state_cfg = {k: v for k, v in config.items() if k not in ("rootfs", "history", "config", "created")}
        state_cfg["config"] = image_cfg
        return StageState(
            [_done(x) for x in layers], snaps, state_cfg, list(config.get("history") or []),
            manifest_desc.digest, {}, list(shell), onbuild=list(onbuild),
        )  # fmt: skip

    def _build_stage(self, stage: Stage) -> StageState:
        state = self._base_state(stage)
        steps = list(stage.steps)
        if state.onbuild:
            from ._dockerfile import parse_onbuild

            triggers = [parse_onbuild(t, self.graph.file, stage.line) for t in state.onbuild]
            steps = triggers + steps
        state.onbuild = []
        state.cmd_set = False
        total = len(steps)
        for n, step in enumerate(steps, 1):
            if self.cancelled.is_set():
                raise BuildError(f"build cancelled before stage {stage.label} step {n}")
            prefix = f"[{stage.label} {n}/{total}]"
            self._step(stage, state, step, prefix)
        return state

    def _history(self, state: StageState, step: Step, empty: bool, created: float | None = None) -> None:
        t = self.epoch if self.epoch is not None else (created or time.time())
        entry: dict[str, Any] = {
            "created": _rfc3339(t),
            "created_by": step.describe(),
            "comment": "bock-build",
        }
        if empty:
            entry["empty_layer"] = True
        state.history.append(entry)

    def _step(self, stage: Stage, state: StageState, step: Step, prefix: str) -> None:
        op = step.op
        if not self.opts.quiet and op not in ("run", "copy"):
            self._say(f"{prefix} {step.describe()}")
        if op == "run":
            self._layer_step(stage, state, step, prefix, self._run_key(stage, state, step), self._do_run)
        elif op == "copy":
            self._layer_step(stage, state, step, prefix, self._copy_key(stage, state, step), self._do_copy)
        elif apply_config_step(state, step, self.opts.build_args, self.global_args):
            self._history(state, step, True)

    def _say(self, text: str) -> None:
        from ._run import _print_lock

        with _print_lock:
            print(text, flush=True)

    # -- layer steps -----------------------------------------------------------------------------------
    def _layer_step(self, stage: Stage, state: StageState, step: Step, prefix: str, keyinfo, action) -> None:
        key, extra = keyinfo
        with self.lock:
            self.counts["steps"] += 1
        rec = None if self.opts.no_cache else self.cache.get(key)
        if rec is not None:
            with self.lock:
                self.counts["cached"] += 1
            if not self.opts.quiet:
                self._say(f"{prefix} {step.describe()}  (cached)")
            done: concurrent.futures.Future = concurrent.futures.Future()
            done.set_result((rec.layer, rec.diff_id))
            snap = self._snap(rec.layer)
            if not snap.is_dir():
                snap = layer_snapshots(
                    self.store, [f.result() for f in state.layers] + [(rec.layer, rec.diff_id)]
                )[-1]
            state.layers.append(done)
            state.snaps = [*state.snaps, snap]
            created = rec.created
        else:
            if not self.opts.quiet:
                self._say(f"{prefix} {step.describe()}")
            t0 = time.monotonic()
            layer_dir = action(stage, state, step, prefix, extra)
            if _TIMING:
                print(f"timing {prefix} {time.monotonic() - t0:.3f}s", file=sys.stderr)
            state.layers.append(self.committer.submit(self._commit, layer_dir, key, step.describe()))
            state.snaps = [*state.snaps, layer_dir]
            created = time.time()
        state.key = key
        self._history(state, step, False, created)

    def _commit(self, layer_dir: Path, key: str, text: str) -> tuple[dict[str, Any], str]:
        """Tar + compress + store one layer (in the background while later steps run); the directory
        stays where it is (later steps' overlays use it) until finish() installs it as the snapshot."""
        layer, diff_id = commit_layer(
            self.store, layer_dir, epoch=self.epoch, compression=self.opts.compression
        )
        self.cache.put(key, layer, diff_id, text)
        with self.lock:
            self.pending.append((layer["digest"], layer_dir))
        return layer, diff_id

    def _finish_commits(self) -> None:
        self.committer.shutdown(wait=True)
        with self.lock:
            pending, self.pending = self.pending, []
        for digest, d in pending:
            install_snapshot(self.store, digest, d)
        for d in self.work.glob(f"layer-{os.getpid()}-*"):
            _remove_tree(d)

    def _snap(self, layer: dict[str, Any]) -> Path:
        from ._store_adapter import snapshot_path

        return snapshot_path(self.store, layer["digest"])

    def _common_key(self, state: StageState, step: Step) -> dict[str, Any]:
        cfg = state.cfg
        return {
            "parent": state.key,
            "op": step.op,
            "env": sorted(state.env().items()),
            "args": sorted(state.args.items()),
            "user": cfg.get("User", ""),
            "workdir": cfg.get("WorkingDir", ""),
            "shell": state.shell,
        }

    def _run_key(self, stage: Stage, state: StageState, step: Step):
        scope = state.scope()
        mounts = []
        for m in step.args["mounts"]:
            m = {k: expand(v, scope) if isinstance(v, str) else v for k, v in m.items()}
            entry = dict(m)
            if m["type"] == "bind":
                entry["content"] = self._bind_digest(stage, m)
            mounts.append(entry)
        key = _sha({**self._common_key(state, step), "command": step.args["command"], "mounts": mounts,
                    "network": step.args["network"]})  # fmt: skip
        return key, mounts

    def _bind_digest(self, stage: Stage, m: dict[str, Any]) -> str:
        src = m.get("source", "")
        if m.get("from"):
            return self._from_digest(stage, m["from"], [src or "."], [])
        sources = select_sources(str(self.opts.context), [src or "."], ignore=self.ignore)
        return sources_digest(sources, self.memo, self.hash_pool)

    def _copy_key(self, stage: Stage, state: StageState, step: Step):
        a = step.args
        scope = state.scope()
        srcs = [expand(s, scope) for s in a["sources"]]
        info: dict[str, Any] = {
            "sources": srcs,
            "dest": expand(a["dest"], scope),
            "chown": expand(a["chown"], scope) if a.get("chown") else None,
            "chmod": a.get("chmod"),
            "add": a["add"],
            "inline": a["inline"],
            "exclude": [expand(x, scope) for x in a.get("exclude") or []],
        }
        from_ref = expand(a["from"], scope) if a.get("from") else None
        file_srcs = [s for s in srcs if s not in a["inline"]]
        urls = [s for s in file_srcs if a["add"] and s.startswith(("http://", "https://"))]
        local = [s for s in file_srcs if s not in urls]
        if from_ref:
            # BuildKit's "slow key": the content of what is copied, not the source stage's key, so
            # a change upstream that leaves the copied files identical does not cascade
            info["content"] = self._from_digest(stage, from_ref, local, info["exclude"])
            selected = None
        else:
            selected = select_sources(
                str(self.opts.context), local, ignore=self.ignore, excludes=info["exclude"]
            )
            info["content"] = sources_digest(selected, self.memo, self.hash_pool)
        if urls:
            info["urls"] = urls  # the URL, not its content (docker: the checksum pins it)
            info["checksum"] = a.get("checksum")
        key = _sha({**self._common_key(state, step), **info})
        return key, {**info, "selected": selected, "from": from_ref, "local": local, "urls": urls}

    def _from_snaps(self, stage: Stage, ref: str) -> list[Path]:
        dep = self._stage_ref(ref, stage.index)
        if dep is not None:
            return self._stage_state(dep.index).snaps
        self._image_digest(ref)  # a clear error when the image is missing
        return layer_snapshots(self.store, [(d, None) for d in self._from_image_layers(ref)])

    def _from_digest(self, stage: Stage, ref: str, patterns: list[str], excludes: list[str]) -> str:
        """Content digest of COPY --from sources, hashed from the snapshot files behind the merged
        view (stable paths and inodes, so the stat memo applies)."""
        from ._context import Entry, Source
        from ._rootfs import lookup

        snaps = self._from_snaps(stage, ref)
        tmp = self._tmpdir()
        try:
            with ro_view(snaps, tmp) as view:
                selected = select_sources(
                    str(view), patterns, ignore=None, excludes=excludes, what=f"stage {ref}"
                )
                if len(snaps) < 2:  # the view is the snapshot dir itself: paths are real already
                    return sources_digest(selected, self.memo, self.hash_pool)
                real = []
                for src in selected:
                    entries = []
                    for e in src.entries:
                        found = lookup(snaps, os.path.relpath(e.path, view))
                        path, st = found if found else (e.path, e.st)
                        entries.append(Entry(path, e.rel, st))
                    real.append(Source(src.root, src.name, src.is_dir, tuple(entries)))
                return sources_digest(real, self.memo, self.hash_pool)
        finally:
            _remove_tree(tmp)

    def _image_digest(self, ref: str) -> str:
        try:
            return self.store.manifest_descriptor(ref).digest
        except Exception:
            raise BaseImageError(
                f"COPY --from image {ref!r} not found in the store {self.store.root}"
            ) from None

    def _tmpdir(self) -> Path:
        d = self.work / f"step-{os.getpid()}-{os.urandom(6).hex()}"
        d.mkdir()
        return d

    def _do_copy(self, stage: Stage, state: StageState, step: Step, prefix: str, info: dict[str, Any]):
        tmp = self._tmpdir()
        try:
            layer_dir = tmp / "layer"
            layer_dir.mkdir()
            owner = parse_chown(info["chown"], state.snaps)
            writer = LayerWriter(layer_dir, state.snaps, owner, parse_chmod(info["chmod"]))
            dest = info["dest"]
            if not dest.startswith("/"):
                dest = os.path.join(state.cfg.get("WorkingDir") or "/", dest) + (
                    "/" if dest.endswith("/") else ""
                )
            for name, content in info["inline"].items():
                target = dest.rstrip("/") + "/" + name if dest.endswith("/") else dest
                writer.put_bytes(content.encode(), target, 0o644)
            if info["from"]:
                snaps = self._from_snaps(stage, info["from"])
                with ro_view(snaps, tmp) as view:
                    sources = select_sources(
                        str(view),
                        info["local"],
                        ignore=None,
                        excludes=info["exclude"],
                        what=f"stage {info['from']}",
                    )
                    copy_sources(writer, sources, dest, keep_owner=True, add=False)
            elif info["local"]:
                copy_sources(writer, info["selected"], dest, keep_owner=False, add=info["add"])
            for url in info["urls"]:
                path, name = fetch_url(url, tmp)
                if info.get("checksum"):
                    got = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
                    if got != info["checksum"]:
                        raise BuildError(
                            f"ADD {url}: checksum mismatch: expected {info['checksum']}, got {got}"
                        )
                target = dest.rstrip("/") + "/" + name if dest.endswith("/") else dest
                writer.put(str(path), os.stat(path), target, keep_owner=False)
            return self._keep(layer_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _keep(self, directory: Path) -> Path:
        """Move a finished layer dir out of the step's temp dir (removed right after)."""
        dest = self.work / f"layer-{os.getpid()}-{os.urandom(6).hex()}"
        os.rename(directory, dest)
        return dest

    def _from_image_layers(self, ref: str) -> list[dict[str, Any]]:
        return self.store.manifest(ref).get("layers", [])

    def _do_run(self, stage: Stage, state: StageState, step: Step, prefix: str, mounts: list[dict[str, Any]]):
        from ._runspec import RunSpec

        tmp = self._tmpdir()
        try:
            with rw_rootfs(state.snaps, tmp) as (rootfs, upper), contextlib.ExitStack() as stack:
                spec = RunSpec(self, stage, state, step, rootfs, tmp, stack)
                created = spec.prepare(mounts)
                (tmp / "config.json").write_text(json.dumps(spec.spec))
                cid = f"bock-build-{os.urandom(6).hex()}"
                t0 = time.monotonic()
                code, tail = self.runtime.run(tmp, cid, prefix, quiet=self.opts.quiet)
                if _TIMING:
                    print(f"timing {prefix} container {time.monotonic() - t0:.3f}s", file=sys.stderr)
                stack.close()
                if code != 0:
                    raise StepFailed(f"{prefix} {step.describe()}", code, tail)
            spec.cleanup_mountpoints(upper, created)
            return self._keep(upper)
        finally:
            _remove_tree(tmp)

    # -- final image ---------------------------------------------------------------------------------------
    def _write_image(self, state: StageState, layer_list: list[tuple[dict[str, Any], str]]) -> BuildResult:
        from bock_image import Descriptor, write_image

        created = self.epoch if self.epoch is not None else time.time()
        cfg = dict(state.cfg)
        if not cfg.get("Env"):
            cfg.pop("Env", None)
        config: dict[str, Any] = {"created": _rfc3339(created)}
        for k in ("architecture", "os", "variant", "os.version", "author"):
            if state.config.get(k):
                config[k] = state.config[k]
        config["config"] = cfg
        config["rootfs"] = {"type": "layers", "diff_ids": [d for _, d in layer_list]}
        config["history"] = state.history
        layers = [Descriptor(d["mediaType"], d["digest"], d["size"]) for d, _ in layer_list]
        tags = list(self.opts.tags)
        desc = write_image(self.store, tags[0] if tags else None, config, layers)
        for t in tags[1:]:
            self.store.add_image(t, desc)
        manifest = {"mediaType": desc.mediaType, "digest": desc.digest, "size": desc.size}
        return BuildResult(manifest, config, self.counts["steps"], self.counts["cached"])


def _done(value: Any) -> concurrent.futures.Future:
    f: concurrent.futures.Future = concurrent.futures.Future()
    f.set_result(value)
    return f


def _remove_tree(path: Path) -> None:
    """Remove a step's temp dir; never crosses into a mount (rootfs is unmounted first)."""
    if os.path.ismount(path / "rootfs"):
        from ._store_adapter import umount

        with contextlib.suppress(OSError):
            umount(str(path / "rootfs"), 2)

    def onerror(func, p, exc):  # make read-only dirs writable and retry
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            func(p)

    shutil.rmtree(path, onerror=onerror)
