"""Where the app's files are: in an installed package, or in a checkout of the project.

An installed wheel carries the page, the widget, the kernels, the engine wheel the browser
installs, the demo model and the vocabulary under ``gpt2web/_data/`` (``setup.py`` copies them
there when the wheel is built); a checkout has them at the top (``web/``, ``weights/``). The
Pyodide runtime is never in the wheel: a checkout keeps it in ``web/runtime/``, an installed
package in the user's cache (``~/.cache/gpt2web/pyodide-<version>/``, fetched once and checked
against pinned hashes: ``gpt2web.host.runtime``).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "_data"
CHECKOUT = Path(__file__).resolve().parents[3]


def installed() -> bool:
    """Whether the app's files come from the package (a wheel) rather than a checkout."""
    return (PACKAGE_DATA / "web" / "widget.js").is_file()


def data_root() -> Path:
    """The folder holding ``web/``, ``weights/`` and ``scripts/make_snapshot.mjs``."""
    return PACKAGE_DATA if installed() else CHECKOUT


def web_dir() -> Path:
    return data_root() / "web"


def weights_dir() -> Path:
    return data_root() / "weights"


def wheels_dir() -> Path:
    """The engine wheel the browser installs (``index.json`` + the wheel)."""
    return web_dir() / "wheels"


def runtime_dir() -> Path:
    """The Pyodide runtime served at ``runtime/``: the checkout's, or the user's cache."""
    if installed():
        from .runtime import default_cache_dir

        return default_cache_dir()
    return CHECKOUT / "web" / "runtime"


def ensure_engine_wheel() -> Path:
    """The folder holding the engine wheel; in a checkout, (re)built from the sources."""
    out = wheels_dir()
    if not installed():
        import sys

        scripts = str(CHECKOUT / "scripts")
        if scripts not in sys.path:
            sys.path.insert(0, scripts)
        from build_wheel import build_wheel

        build_wheel(out, quiet=True)
    if not (out / "index.json").is_file():
        raise FileNotFoundError(f"{out / 'index.json'} is missing: the package is incomplete, reinstall it")
    return out


def ensure_web_runtime(quiet: bool = True) -> Path:
    """The verified Pyodide runtime folder, fetched into the cache on first use (what it does
    is told on stderr: stdout stays the command's own, e.g. serve's "Serving ... at" line)."""
    import contextlib
    import sys

    from .runtime import RuntimeSetupError, ensure_runtime

    dest = runtime_dir()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return ensure_runtime(dest, cache=dest if installed() else None, quiet=quiet)
    except RuntimeSetupError as e:
        raise OSError(f"the Pyodide runtime could not be set up in {dest}: {e}") from None
