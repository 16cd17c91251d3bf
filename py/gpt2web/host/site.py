"""The files a documentation site needs for its widgets, copied into its output once.

``publish(dest, models)`` puts, under ``dest`` (e.g. ``_build/html/_static/gpt2web/``): the
widget and the worker with their modules and kernels (``web/``), the Pyodide runtime (the
checkout's, or the user's cache, fetched once and checked), the engine wheel, the vocabulary
and the models the pages use, and ``gpt2web-static.css`` (the static first view's styles).
Everything the widgets load is then below ``dest``: no request leaves the docs host, at any
sub-path. Files already there with the same size and time are not copied again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .offline import write_listing
from .render import STYLESHEET, model_folder, static_css

# Page files of the standalone app that a docs site does not need.
SKIP_WEB = {"runtime", "wheels", "index.html", "app.js", "bench.html", "bench.js", "bench-page.js",
            "embed.html", "protocol.md"}


def _copy(src: Path, dst: Path) -> bool:
    st = src.stat()
    try:
        d = dst.stat()
        if d.st_size == st.st_size and int(d.st_mtime) == int(st.st_mtime):
            return False
    except FileNotFoundError:
        pass
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return True


def _copy_tree(src: Path, dst: Path, skip: set[str] = frozenset()) -> int:
    n = 0
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if rel.parts[0] in skip or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if p.is_file() and not p.name.endswith(".map"):
            n += _copy(p, dst / rel)
    return n


def write_stylesheet(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / STYLESHEET
    css = static_css()
    if not path.is_file() or path.read_text(encoding="utf-8") != css:
        path.write_text(css, encoding="utf-8")
    return path


def publish(dest: Path | str, models: set[str] | list[str], weights: Path | str | None = None,
            log=lambda m: None) -> Path:
    """Copy the widget, runtime, engine and ``models`` into ``dest``; return ``dest``."""
    from .paths import ensure_engine_wheel, ensure_web_runtime, web_dir, weights_dir

    dest = Path(dest)
    web = web_dir()
    n = _copy_tree(web, dest, SKIP_WEB)
    n += _copy_tree(ensure_web_runtime(), dest / "runtime")
    n += _copy_tree(ensure_engine_wheel(), dest / "wheels")
    base = Path(weights) if weights is not None else weights_dir()
    size = 0
    for name in sorted(models):
        folder = model_folder(name, base)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        n += _copy(folder / "manifest.json", dest / "weights" / name / "manifest.json")
        for shard in manifest["shards"]:
            n += _copy(folder / shard["file"], dest / "weights" / name / shard["file"])
            size += shard["bytes"]
        vocab = manifest["tokenizer"]["file"]  # relative to the manifest: "../gpt2.tiktoken"
        n += _copy((folder / vocab).resolve(), (dest / "weights" / name / vocab).resolve())
    write_stylesheet(dest)
    write_listing(dest)  # offline.json: what the service worker keeps for offline visits
    log(f"gpt2web: {n} files copied into {dest} (models: {', '.join(sorted(models)) or 'none'}, "
        f"{size / 1e6:.1f} MB of weights)")
    return dest
