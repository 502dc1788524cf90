#!/bin/bash
# The main job, end to end and offline: install bock, build a busybox bundle from
# Debian's busybox-static, and run a container that shows its isolation.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
need=()
for p in busybox-static python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then apt-get update -q && apt-get install -y -q "${need[@]}"; fi

# bock in its own venv on Debian's interpreter; the command's shebang names it.
[ -x /opt/bock/bin/python3 ] || /usr/bin/python3 -m venv /opt/bock
/opt/bock/bin/pip install -q --upgrade "$here/runtime"
ln -sf /opt/bock/bin/bock /usr/local/bin/bock
echo "# $(head -1 /opt/bock/bin/bock)  ->  $(bock --version | head -1)"

# A busybox-static rootfs (no network needed).
bundle=/tmp/bock-demo
rm -rf --one-file-system "$bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in $("$bundle/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$bundle/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$bundle/rootfs/etc/group"

cd "$bundle"
bock spec
/usr/bin/python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["hostname"] = "bock-demo"
c["process"]["args"] = ["sh", "-c", """
echo "hostname:   $(hostname)   (the host is $HOST_NAME)"
echo "my pid:     $$"
echo "processes:"; ps -o pid,comm
echo "mounts:";   cat /proc/self/mounts | cut -d' ' -f1-3
echo "uts/pid/mnt/net namespaces differ from the host's:"
ls -l /proc/self/ns | awk '{print "  " $9 " " $11}'
"""]
import socket
c["process"]["env"].append("HOST_NAME=" + socket.gethostname())
json.dump(c, open("config.json", "w"), indent=2)
PY
echo "# host namespaces:"; ls -l /proc/self/ns | awk '{print "  " $9 " " $11}' | grep -E 'uts|pid |mnt|net'
id="demo-$$"
echo "# bock run $id"
bock run "$id"
echo "# exit status $?; containers left: $(bock list -q | wc -l)"
