"""``create`` keeps compiled seccomp programs in ``<root>/@seccomp-cache`` and trusts an
entry only when the directory and the file are ours alone (real containers, real filters)."""

from __future__ import annotations

import os
import struct

import pytest

pytestmark = pytest.mark.root

ALLOW = 0x7FFF0000
# mkdir denied with EACCES; everything else allowed
PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
}
SCRIPT = "mkdir /tmp/d && rmdir /tmp/d; echo rc=$?"


def run_mkdir(runtime, bundle) -> str:
    res = runtime.run(bundle)
    assert res.rc == 0, res
    return res.out.strip()


def test_second_create_uses_the_cache_and_a_foreign_directory_is_ignored(runtime, bundle):
    b = bundle("sh", "-c", SCRIPT)
    b.config["linux"]["seccomp"] = PROFILE
    b.config["root"]["readonly"] = False
    b.save()
    assert run_mkdir(runtime, b) == "rc=1"  # the root did not exist yet: nothing cached
    cache = os.path.join(runtime.root, "@seccomp-cache")
    assert run_mkdir(runtime, b) == "rc=1"
    (entry,) = os.listdir(cache)
    assert os.stat(cache).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(cache, entry)).st_mode & 0o777 == 0o600
    assert "@seccomp-cache" not in runtime("list", "-q").ok().out
    # A valid entry is what the next container gets: proven by swapping in an allow-all program.
    allow_all = b'{"len":8,"flags":0,"notify":false,"ignored":[]}\n' + struct.pack("=HBBI", 0x06, 0, 0, ALLOW)
    with open(os.path.join(cache, entry), "wb") as f:
        f.write(allow_all)
    assert run_mkdir(runtime, b) == "rc=0"
    # The same entry in a directory others may write to is not trusted: compiled again.
    os.chmod(cache, 0o777)
    assert run_mkdir(runtime, b) == "rc=1"
