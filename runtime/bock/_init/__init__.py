"""What runs inside the forked children of ``bock create``: the container init.

stage 1 joins and creates namespaces and forks stage 2, which becomes the
container's pid 1: it prepares the rootfs, waits on exec.fifo and execs the user
process. Both report to the parent over :mod:`bock._init.sync`.
"""
