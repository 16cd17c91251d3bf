#!/usr/bin/env python3
"""Build the WebAssembly SIMD kernels: kernels/int8.c + kernels/f32.c -> web/kernels/int8.wasm
(committed; one module: the int8 matrix products and the float32 kernels around them).

The build is reproducible: fixed flags, one pinned compiler (Debian clang + lld 14), no paths
or dates in the output. Next to the binary, ``web/kernels/int8.wasm.json`` records what made it:
the sha256 of each source, the flags, the compiler's version and the sha256 of the binary.

Every build also checks that the module is safe to run on Pyodide's memory (it imports the
interpreter's heap, so one stray write corrupts Python):
  * it imports exactly one thing, ``env.memory``, and exports only the kernel functions;
  * it has no data segments (which would be copied over Pyodide's heap at instantiation)
    and no start function;
  * no instruction reads or writes a global: the only global clang emits is the C stack
    pointer, and a kernel that used a C stack would write into Pyodide's heap.

Usage:
  python3 scripts/build_kernels.py            # build into web/kernels/
  python3 scripts/build_kernels.py --check    # rebuild in a temp dir, compare with the committed
                                              # binary and record (exit 1 on a difference)
Needs ``clang`` and ``wasm-ld`` (Debian: apt-get install -y clang lld; wabt adds a
precise disassembly check). Other scripts: ``from build_kernels import build, check``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCES = (REPO_ROOT / "kernels" / "int8.c", REPO_ROOT / "kernels" / "f32.c")  # one folder
OUT_DIR = REPO_ROOT / "web" / "kernels"
WASM_NAME = "int8.wasm"
RECORD_NAME = "int8.wasm.json"
EXPORTS = ("gemm_int8", "pack_rows4x16", "scratch_bytes", "layer_norm_f32", "gelu_f32", "attention_f32",
           "softmax_z_f32", "topk_f32")
CLANG = "clang"
FLAGS = [
    "--target=wasm32", "-O3", "-msimd128",
    "-ffreestanding", "-nostdlib", "-fno-builtin",  # no libc: nothing may call memset & co
    "-Wall", "-Werror",
    "-Wl,--no-entry", "-Wl,--import-memory",        # run on the host's (Pyodide's) memory
]


class BuildError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compiler_version(clang: str = CLANG) -> str | None:
    """The compiler's first version line, or None when clang or wasm-ld is missing."""
    if shutil.which(clang) is None or shutil.which("wasm-ld") is None:
        return None
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


# --------------------------------------------------------------------------- safety checks


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _name(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _leb(data, pos)
    return data[pos:pos + n].decode("utf-8"), pos + n


def sections(wasm: bytes) -> list[tuple[int, bytes]]:
    if wasm[:8] != b"\0asm\1\0\0\0":
        raise BuildError("not a WebAssembly version-1 module")
    out, pos = [], 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, pos = _leb(wasm, pos + 1)
        out.append((sid, wasm[pos:pos + size]))
        pos += size
    return out


def _imports(body: bytes) -> list[tuple[str, str, int]]:
    n, pos = _leb(body, 0)
    out = []
    for _ in range(n):
        mod, pos = _name(body, pos)
        field, pos = _name(body, pos)
        kind = body[pos]
        pos += 1
        if kind == 0:  # function: type index
            _, pos = _leb(body, pos)
        elif kind == 1:  # table: reftype + limits
            pos += 1
            flags, pos = _leb(body, pos)
            _, pos = _leb(body, pos)
            if flags & 1:
                _, pos = _leb(body, pos)
        elif kind == 2:  # memory: limits
            flags, pos = _leb(body, pos)
            _, pos = _leb(body, pos)
            if flags & 1:
                _, pos = _leb(body, pos)
        elif kind == 3:  # global: valtype + mutability
            pos += 2
        out.append((mod, field, kind))
    return out


def _exports(body: bytes) -> list[tuple[str, int]]:
    n, pos = _leb(body, 0)
    out = []
    for _ in range(n):
        name, pos = _name(body, pos)
        kind = body[pos]
        _, pos = _leb(body, pos + 1)
        out.append((name, kind))
    return out


def _function_bodies(body: bytes) -> list[bytes]:
    n, pos = _leb(body, 0)
    out = []
    for _ in range(n):
        size, pos = _leb(body, pos)
        out.append(body[pos:pos + size])
        pos += size
    return out


def check_module(wasm: bytes, wasm_path: Path | None = None, exports: tuple[str, ...] = EXPORTS) -> None:
    """Raise BuildError unless the module is safe to instantiate on Pyodide's memory."""
    secs = sections(wasm)
    ids = [sid for sid, _ in secs]
    if 11 in ids or 12 in ids:
        raise BuildError("the module has data segments: they would overwrite Pyodide's heap "
                         "(kernels must not use static data, string literals or tables of constants)")
    if 8 in ids:
        raise BuildError("the module has a start function")
    body = dict(secs)
    imports = _imports(body.get(2, b"\0"))
    if imports != [("env", "memory", 2)]:
        raise BuildError(f"the module must import exactly env.memory, it imports {imports}")
    # No instruction may touch a global (the C stack pointer). With wabt, check the
    # disassembly; without, scan for the bytes of global.get/set 0 (sound, may over-report).
    if wasm_path is not None and shutil.which("wasm-objdump"):
        dis = subprocess.run(["wasm-objdump", "-d", str(wasm_path)], capture_output=True,
                             text=True, check=True).stdout
        if "global.get" in dis or "global.set" in dis:
            raise BuildError("a kernel uses the C stack (global.get/set of __stack_pointer in the "
                             "disassembly): it would write into Pyodide's heap. Keep locals in "
                             "registers (fully unrolled fixed-size arrays) or pass scratch memory in")
    else:
        for fn in _function_bodies(body.get(10, b"\0")):
            if b"\x23\x00" in fn or b"\x24\x00" in fn:
                raise BuildError("a kernel may use the C stack (bytes of global.get/set 0 found; "
                                 "install wabt for a precise check with wasm-objdump)")
    found = _exports(body.get(7, b"\0"))
    if sorted(found) != sorted((name, 0) for name in exports):
        raise BuildError(f"the module must export the functions {exports}, it exports {found}")


# --------------------------------------------------------------------------- build


def compile_wasm(out_path: Path, source: Path | tuple[Path, ...] = SOURCES, clang: str = CLANG,
                 exports: tuple[str, ...] = EXPORTS) -> bytes:
    sources = (source,) if isinstance(source, Path) else tuple(source)
    if len({s.parent for s in sources}) != 1:
        raise BuildError("the kernel sources must sit in one folder")
    version = compiler_version(clang)
    if version is None:
        raise BuildError("clang and wasm-ld are needed to build the kernels "
                         "(Debian: apt-get install -y clang lld)")
    # Compile from inside the source folder with a relative name: no absolute path can leak
    # into the output.
    cmd = [clang, *FLAGS, "-o", str(out_path.resolve()), *(s.name for s in sources)]
    proc = subprocess.run(cmd, cwd=sources[0].parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    wasm = out_path.read_bytes()
    check_module(wasm, out_path, exports)
    return wasm


def _source_hashes() -> dict[str, str]:
    return {s.relative_to(REPO_ROOT).as_posix(): _sha256(s.read_bytes()) for s in SOURCES}


def record_for(wasm: bytes, clang: str = CLANG) -> dict:
    return {
        "sources": _source_hashes(),
        "compiler": compiler_version(clang),
        "flags": FLAGS,
        "exports": list(EXPORTS),
        "wasm": WASM_NAME,
        "wasm_sha256": _sha256(wasm),
        "wasm_bytes": len(wasm),
    }


def _record_text(record: dict) -> str:
    return json.dumps(record, indent=2) + "\n"


def build(out_dir: Path = OUT_DIR, quiet: bool = False) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wasm = compile_wasm(Path(tmp) / WASM_NAME)
    target = out_dir / WASM_NAME
    if not (target.is_file() and target.read_bytes() == wasm):
        tmp_path = target.with_name(f".{WASM_NAME}.tmp")
        tmp_path.write_bytes(wasm)
        os.replace(tmp_path, target)
    (out_dir / RECORD_NAME).write_text(_record_text(record_for(wasm)))
    if not quiet:
        print(f"Built {target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target} "
              f"({len(wasm)} bytes, sha256 {_sha256(wasm)[:16]}...)")
    return target


def recorded(out_dir: Path = OUT_DIR) -> dict:
    path = out_dir / RECORD_NAME
    if not path.is_file():
        raise BuildError(f"{path} is missing: run python3 scripts/build_kernels.py")
    return json.loads(path.read_text())


def check_record(out_dir: Path = OUT_DIR) -> list[str]:
    """Problems found without a compiler: the record against the source and the binary."""
    rec, problems = recorded(out_dir), []
    if rec.get("sources") != _source_hashes():
        problems.append(f"the sources ({', '.join(_source_hashes())}) changed since {WASM_NAME} was "
                        "built: run python3 scripts/build_kernels.py")
    wasm_path = out_dir / WASM_NAME
    if not wasm_path.is_file():
        problems.append(f"{wasm_path} is missing: run python3 scripts/build_kernels.py")
    elif rec["wasm_sha256"] != _sha256(wasm_path.read_bytes()):
        problems.append(f"{wasm_path.name} is not the binary its record describes: rebuild it")
    if rec["flags"] != FLAGS:
        problems.append("the build flags changed since the binary was built: rebuild it")
    return problems


def check(out_dir: Path = OUT_DIR) -> list[str]:
    """Rebuild in a temp dir and compare with the committed binary; return the problems."""
    problems = check_record(out_dir)
    committed = (out_dir / WASM_NAME).read_bytes() if (out_dir / WASM_NAME).is_file() else b""
    if committed:
        check_module(committed)
    with tempfile.TemporaryDirectory() as tmp:
        wasm = compile_wasm(Path(tmp) / WASM_NAME)
    if wasm != committed:
        problems.append(f"rebuilding {', '.join(_source_hashes())} gives different bytes than the "
                        f"committed {WASM_NAME} (sha256 {_sha256(wasm)[:16]}... vs "
                        f"{_sha256(committed)[:16]}...): run python3 scripts/build_kernels.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the WebAssembly SIMD kernels.")
    ap.add_argument("--check", action="store_true",
                    help="rebuild in a temp dir and compare with the committed binary")
    args = ap.parse_args(argv)
    try:
        if args.check:
            rec = recorded()
            here = compiler_version()
            if here is None:
                print("error: clang and wasm-ld are needed (apt-get install -y clang lld)", file=sys.stderr)
                return 2
            if here != rec["compiler"]:
                print(f"error: the binary was built with {rec['compiler']!r}, this machine has "
                      f"{here!r}: the bytes can only be compared with the same compiler", file=sys.stderr)
                return 2
            problems = check()
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            if not problems:
                print(f"OK: web/kernels/{WASM_NAME} is the build of {', '.join(rec['sources'])} "
                      f"(sha256 {rec['wasm_sha256'][:16]}...)")
            return 1 if problems else 0
        build()
        return 0
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
