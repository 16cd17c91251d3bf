"""Packaging hook: the wheel carries the app's files as package data (gpt2web/_data/).

Everything else is in pyproject.toml. At build time this copies, from the project folder,
into ``gpt2web/_data/``: ``web/`` (the page, the widget, the worker, the kernels; not the
generated ``web/runtime/`` and ``web/wheels/``), the engine wheel the browser installs (built
here from the sources, ``web/wheels/``), ``weights/gpt2.tiktoken`` and the demo model
``weights/demo/``, and ``scripts/make_snapshot.mjs`` (the interpreter snapshot builder).
``gpt2web.host.paths`` finds them there, or in the checkout when running from one.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.map", ".*")


def copy_app_data(dest: Path) -> None:
    """Copy the app's files into ``dest`` (the package's ``_data`` folder)."""
    if dest.exists():
        shutil.rmtree(dest)
    web = HERE / "web"
    shutil.copytree(web, dest / "web", ignore=lambda d, names: set(SKIP(d, names)) | (
        {"runtime", "wheels"} if Path(d) == web else set()))
    sys.path.insert(0, str(HERE / "scripts"))
    try:
        from build_wheel import build_wheel
    finally:
        sys.path.pop(0)
    build_wheel(dest / "web" / "wheels", src_root=HERE / "py", pyproject=HERE / "pyproject.toml", quiet=True)
    (dest / "weights").mkdir(parents=True)
    shutil.copy2(HERE / "weights" / "gpt2.tiktoken", dest / "weights" / "gpt2.tiktoken")
    shutil.copytree(HERE / "weights" / "demo", dest / "weights" / "demo", ignore=SKIP)
    (dest / "scripts").mkdir()
    shutil.copy2(HERE / "scripts" / "make_snapshot.mjs", dest / "scripts" / "make_snapshot.mjs")


class BuildWithAppData(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout itself
            copy_app_data(Path(self.build_lib) / "gpt2web" / "_data")


setup(cmdclass={"build_py": BuildWithAppData})
