"""offline.json: the app's files, for the service worker (web/sw.js) that keeps them for offline visits.

The listing names every file of the app folder a page may load (pages, modules, styles, kernels,
the Pyodide runtime, the engine wheel) with its size and sha256, and a `version` derived from all
of them. The page registers ``sw.js?v=<version>``: a new version is a new service worker, which
keeps the new files in a cache of its own and takes over only once it has all of them, so a
visit never mixes old and new files. Models are not listed: the page keeps the models a reader
used, as it loads them.

``gpt2web serve`` answers /offline.json from this module; ``gpt2web export`` and the docs build
write it as a file (``write_listing``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FORMAT = 1
# Not part of the app: the models (kept as they are used), what the server computes or the
# service worker must fetch itself, and the files only tools use.
SKIP_TOP = {"weights", "models.json", "offline.json", "sw.js", "serve.py", "bench.html", "bench.js",
            "bench-page.js"}
SKIP_SUFFIXES = (".map", ".md", ".py", ".pyc")

_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def _sha256(path: Path, st) -> str:
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hashes[key] = h.hexdigest()
    return _hashes[key]


def listing(folder: Path | str, mounts: dict[str, Path | str | None] | None = None) -> dict:
    """{"format", "version", "files": [{"path", "bytes", "sha256"}]} for the app in ``folder``.

    ``mounts`` maps a top-level name to another folder served there instead (e.g. ``runtime``
    from the user's cache): its files are listed under that name.
    """
    folder = Path(folder)
    mounts = {k: Path(v) for k, v in (mounts or {}).items() if v is not None}
    files = [f for f in _files(folder, folder) if f["path"].split("/")[0] not in mounts]
    for name, other in mounts.items():
        files += [{**f, "path": f"{name}/{f['path']}"} for f in _files(other, other, top=False)]
    files.sort(key=lambda f: f["path"])
    version = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    return {"format": FORMAT, "version": version, "files": files}


def _files(folder: Path, base: Path, top: bool = True) -> list[dict]:
    files = []
    base = base.resolve()
    if not folder.is_dir():
        return files
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if (top and rel.parts[0] in SKIP_TOP) or p.name.endswith(SKIP_SUFFIXES):
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        try:
            if not p.is_file() or not p.resolve().is_relative_to(base):
                continue
            st = p.stat()
        except OSError:
            continue
        files.append({"path": rel.as_posix(), "bytes": st.st_size, "sha256": _sha256(p, st)})
    return files


def write_listing(folder: Path | str) -> Path:
    """Write ``folder/offline.json``; return its path."""
    path = Path(folder) / "offline.json"
    path.write_text(json.dumps(listing(folder), indent=1) + "\n", encoding="utf-8")
    return path
