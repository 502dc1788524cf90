"""``bock run`` with a terminal: proxy between our stdio and the container's pty master."""

from __future__ import annotations

import os
import select

from bock._lifecycle.wait import pidfd_open


def _copy_winsize(src: int, dst: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def proxy(master: int, pid: int) -> None:
    import _signal

    saved = None
    if os.isatty(0):
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_winsize(0, master)
        _signal.signal(28, lambda *_: _copy_winsize(0, master))  # SIGWINCH
    pidfd = pidfd_open(pid)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(0, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    stdin_open = True
    try:
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
                elif fd == 0 and stdin_open:
                    data = os.read(0, 65536) if ev & select.POLLIN else b""
                    if data:
                        os.write(master, data)
                    else:
                        stdin_open = False
                        poller.unregister(0)
                elif fd == pidfd:
                    # drain what is left, then stop
                    os.set_blocking(master, False)
                    try:
                        while True:
                            data = os.read(master, 65536)
                            if not data:
                                break
                            os.write(1, data)
                    except OSError:
                        pass
                    return
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        if pidfd is not None:
            os.close(pidfd)
        os.close(master)
