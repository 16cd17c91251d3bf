#!/usr/bin/env python3
"""Build the pure-Python wheel of the gpt2web engine that the browser installs.

Writes ``web/wheels/gpt2web-<version>-py3-none-any.whl`` and
``web/wheels/index.json`` (``{"wheel": <file name>, "sha256": <hex>, "version": ...}``),
which tells the worker which file to fetch.

The wheel holds every ``*.py`` under ``py/gpt2web/`` except the host-only
subpackage ``py/gpt2web/host/`` (CLI, server, converter), the host-only entry points
``sphinx.py``, ``mkdocs.py`` and ``notebook.py``, and ``__pycache__``.
It is written directly with zipfile and is deterministic: fixed timestamps,
fixed permissions, sorted entries, so the same sources give the same bytes.

Usage:  python3 scripts/build_wheel.py [--out web/wheels]
Other scripts:  ``from build_wheel import build_wheel; build_wheel(out_dir)``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_ROOT = REPO_ROOT / "py"
PACKAGE = "gpt2web"
EXCLUDED_SUBPACKAGES = ("host",)  # host-only code never goes to the browser
EXCLUDED_MODULES = ("sphinx.py", "mkdocs.py", "notebook.py")  # docs and notebook entry points (host)
DEFAULT_OUT = REPO_ROOT / "web" / "wheels"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold


def _project_meta(pyproject: Path) -> dict:
    with open(pyproject, "rb") as f:
        return tomllib.load(f)["project"]


def engine_files(src_root: Path = SRC_ROOT) -> list[tuple[str, Path]]:
    """(archive name, path) of every engine module, sorted by archive name."""
    pkg = src_root / PACKAGE
    if not pkg.is_dir():
        raise SystemExit(f"error: package folder {pkg} not found")
    out = []
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        parts = rel.parts
        if parts[0] in EXCLUDED_SUBPACKAGES and len(parts) > 1:
            continue
        if len(parts) == 1 and parts[0] in EXCLUDED_MODULES:
            continue
        if "__pycache__" in parts or any(p.startswith(".") for p in parts):
            continue
        if not path.is_file():
            continue
        out.append(((Path(PACKAGE) / rel).as_posix(), path))
    out.sort(key=lambda t: t[0])
    return out


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _metadata(meta: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {meta['name']}",
        f"Version: {meta['version']}",
    ]
    if meta.get("description"):
        lines.append(f"Summary: {meta['description']}")
    lic = meta.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append(f"License: {lic['text']}")
    if meta.get("requires-python"):
        lines.append(f"Requires-Python: {meta['requires-python']}")
    for dep in meta.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    return "\n".join(lines) + "\n"


def _wheel_file() -> str:
    return ("Wheel-Version: 1.0\n"
            "Generator: gpt2web scripts/build_wheel.py\n"
            "Root-Is-Purelib: true\n"
            "Tag: py3-none-any\n")


def _zipinfo(name: str) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi.create_system = 3  # unix, so the permission bits below are honoured
    zi.external_attr = (0o100644 & 0xFFFF) << 16
    return zi


def wheel_bytes(src_root: Path = SRC_ROOT, pyproject: Path = REPO_ROOT / "pyproject.toml"
                ) -> tuple[str, bytes, int]:
    """Return (file name, wheel bytes, number of modules) for the engine wheel."""
    meta = _project_meta(pyproject)
    name = meta["name"].replace("-", "_")
    version = meta["version"]
    dist_info = f"{name}-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [(arc, p.read_bytes()) for arc, p in engine_files(src_root)]
    n_modules = len(entries)
    entries.append((f"{dist_info}/METADATA", _metadata(meta).encode("utf-8")))
    entries.append((f"{dist_info}/WHEEL", _wheel_file().encode("utf-8")))
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode("utf-8")))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arc, data in entries:
            zf.writestr(_zipinfo(arc), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue(), n_modules


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_wheel(out_dir: Path | str = DEFAULT_OUT, *, src_root: Path = SRC_ROOT,
                pyproject: Path = REPO_ROOT / "pyproject.toml", quiet: bool = False) -> Path:
    """Build the engine wheel into ``out_dir``, write ``index.json``; return the wheel path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    filename, data, n_modules = wheel_bytes(src_root, pyproject)
    wheel = out_dir / filename
    if not (wheel.is_file() and wheel.read_bytes() == data):
        _write_atomic(wheel, data)
    # Drop wheels of other versions so index.json is the only truth.
    for old in out_dir.glob(f"{PACKAGE}-*.whl"):
        if old.name != filename:
            old.unlink()
    digest = hashlib.sha256(data).hexdigest()
    meta = _project_meta(pyproject)
    index = {"wheel": filename, "sha256": digest, "size": len(data), "version": meta["version"]}
    _write_atomic(out_dir / "index.json", (json.dumps(index, indent=2) + "\n").encode("utf-8"))
    if not quiet:
        print(f"Built {wheel} ({n_modules} modules, {len(data)} bytes, sha256 {digest[:16]}...)")
    return wheel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the gpt2web engine wheel for the browser.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default web/wheels)")
    args = ap.parse_args(argv)
    build_wheel(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
