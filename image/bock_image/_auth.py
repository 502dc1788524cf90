"""Registry credentials: containers auth.json, docker config.json, credential helpers;
and the WWW-Authenticate challenge parser used by the bearer-token flow."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import attrs

from ._fsutil import atomic_write
from .errors import AuthError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@attrs.frozen
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str | None = None

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def auth_files(authfile: str | os.PathLike | None = None) -> list[Path]:
    """Search order of containers-auth.json(5), then docker's files."""
    home = Path(os.environ.get("HOME") or "~").expanduser()
    files: list[Path] = []
    explicit = authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        files.append(Path(explicit))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    files.append(Path(os.environ.get("DOCKER_CONFIG") or home / ".docker") / "config.json")
    files.append(home / ".dockercfg")
    return files


def default_authfile(authfile: str | os.PathLike | None = None) -> Path:
    """Where login writes: --authfile, $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
    else $XDG_CONFIG_HOME/containers/auth.json."""
    return auth_files(authfile)[0]


def _key_host(key: str) -> str:
    key = re.sub(r"^https?://", "", key)
    if key.startswith("index.docker.io/v1") or key in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return key.rstrip("/")


def _helper(name: str, server: str) -> Credentials | None:
    try:
        res = subprocess.run(
            [f"docker-credential-{name}", "get"],
            input=server.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise AuthError(f"credential helper docker-credential-{name} not found in PATH") from None
    if res.returncode != 0:
        if b"credentials not found" in res.stdout.lower() + res.stderr.lower():
            return None
        raise AuthError(
            f"credential helper {name} failed: {(res.stderr or res.stdout).decode(errors='replace').strip()}"
        )
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise AuthError(f"credential helper {name} printed invalid JSON") from None
    if data.get("Username") == "<token>":
        return Credentials(identity_token=data.get("Secret"))
    return Credentials(data.get("Username", ""), data.get("Secret", ""))


def _decode(entry: dict) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(identity_token=entry["identitytoken"])
    if entry.get("auth"):
        try:
            user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AuthError("invalid base64 'auth' entry in an auth file") from None
        return Credentials(user, pw)
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""))
    return None


def find_credentials(
    registry: str, repository: str | None = None, authfile: str | os.PathLike | None = None
) -> Credentials | None:
    """The most specific credentials for registry[/repository] in the first file that has any."""
    wanted = [registry]
    if repository:
        parts = repository.split("/")
        wanted = [f"{registry}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)] + wanted
    for path in auth_files(authfile):
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        except ValueError:
            raise AuthError(f"{path}: invalid JSON") from None
        helpers = data.get("credHelpers") or {}
        if registry in helpers:
            return _helper(helpers[registry], DOCKER_HUB_KEY if registry == "docker.io" else registry)
        auths = data.get("auths", data if path.name == ".dockercfg" else {}) or {}
        by_key = {_key_host(k): v for k, v in auths.items() if isinstance(v, dict)}
        for key in wanted:
            if key in by_key:
                creds = _decode(by_key[key])
                if creds:
                    return creds
        if data.get("credsStore"):
            creds = _helper(data["credsStore"], DOCKER_HUB_KEY if registry == "docker.io" else registry)
            if creds:
                return creds
    return None


def save_credentials(registry: str, creds: Credentials, authfile: str | os.PathLike | None = None) -> Path:
    path = default_authfile(authfile)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        data = {}
    except ValueError:
        raise AuthError(f"{path}: invalid JSON, not overwriting") from None
    key = DOCKER_HUB_KEY if registry == "docker.io" and path.name == "config.json" else registry
    data.setdefault("auths", {})[key] = {
        "auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(data, indent=1).encode() + b"\n", mode=0o600)
    return path


def remove_credentials(registry: str, authfile: str | os.PathLike | None = None) -> bool:
    path = default_authfile(authfile)
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return False
    auths = data.get("auths") or {}
    keys = [k for k in auths if _key_host(k) == registry]
    for k in keys:
        del auths[k]
    if keys:
        atomic_write(path, json.dumps(data, indent=1).encode() + b"\n", mode=0o600)
    return bool(keys)


_CHALLENGE_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_RE.finditer(rest)
    }
    return scheme.lower(), params
