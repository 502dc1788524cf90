#!/bin/bash
# usage: sdfix-probe.sh NAME   (runs systemd as PID 1 in new namespaces; foreground)
set -eu
NAME=$1
D=/tmp/$NAME
mkdir -p $D
for h in /sys/fs/cgroup/*/; do
  mkdir -p $h$NAME
  if [ -e $h$NAME/cpuset.cpus ]; then cat ${h}cpuset.cpus > $h$NAME/cpuset.cpus; cat ${h}cpuset.mems > $h$NAME/cpuset.mems; fi
  echo $$ > $h$NAME/cgroup.procs
done
exec unshare --pid --fork --mount --uts --ipc --cgroup --net --propagation private --kill-child /bin/bash -c '
set -eu
D='$D'
R=$D/root
mkdir -p $R
mount -t tmpfs -o mode=755 tmpfs $R
cd $R
ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/sbin sbin
mkdir -p usr etc proc sys dev run tmp var root work/wt/systemd work/wt/systemd-venv
mount --bind /usr usr; mount -o remount,bind,ro usr
mount --bind /etc etc; mount -o remount,bind,ro etc
mount --bind /work/wt/systemd work/wt/systemd
mount --bind /work/wt/systemd-venv work/wt/systemd-venv
mount -t proc proc proc
mount -t sysfs -o ro sysfs sys
mount -t tmpfs -o mode=755 tmpfs sys/fs/cgroup
for h in cpu cpuacct cpuset memory devices freezer blkio pids; do
  mkdir sys/fs/cgroup/$h; mount -t cgroup -o $h cgroup sys/fs/cgroup/$h
done
mkdir sys/fs/cgroup/systemd sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 sys/fs/cgroup/unified
mount -t tmpfs -o mode=755 tmpfs dev
for n in null zero full random urandom tty; do touch dev/$n; mount --bind /dev/$n dev/$n; done
mkdir dev/pts dev/shm; mount -t devpts -o newinstance,ptmxmode=666 devpts dev/pts; ln -s pts/ptmx dev/ptmx
mount -t tmpfs tmpfs dev/shm
mount -t tmpfs -o mode=755 tmpfs run
mount -t tmpfs -o mode=1777 tmpfs tmp
mount -t tmpfs -o mode=755 tmpfs var
mkdir -p run/systemd/system
printf "[Unit]\nDescription=bock fixture\n" > run/systemd/system/bock-fixture.target
hostname $(basename $D)
mkdir old
pivot_root . old
umount -l /old; rmdir /old
export container=bock
exec /lib/systemd/systemd --unit=bock-fixture.target --log-level=debug
'
