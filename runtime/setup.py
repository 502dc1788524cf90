"""Only one thing here that pyproject.toml cannot say: the shebang of ``bin/bock``.

pip rewrites a ``#!python`` first line to the installing interpreter and drops any
flags. bock wants ``-I -S`` (no PYTHON* variables, no user site, no site.py: about 3 ms
of every runtime call), so the script is written with the absolute path of the
interpreter that builds it, which for ``pip install ./runtime`` is the interpreter
that runs pip: the one the package is installed for.
"""

import os
import sys

from setuptools import setup

try:
    from setuptools.command.build_scripts import build_scripts
except ImportError:  # setuptools keeps it in its vendored distutils
    from distutils.command.build_scripts import build_scripts


class LeanShebang(build_scripts):
    def run(self) -> None:
        super().run()
        for name in os.listdir(self.build_dir):
            path = os.path.join(self.build_dir, name)
            with open(path, "rb") as f:
                first, rest = f.readline(), f.read()
            if first.startswith(b"#!") and b"python" in first:
                with open(path, "wb") as f:
                    f.write(b"#!" + os.fsencode(sys.executable) + b" -IS\n" + rest)


setup(cmdclass={"build_scripts": LeanShebang})
