#!/usr/bin/env node
// Build the memory snapshot of a started Pyodide interpreter that the page restores instead of
// booting Python from scratch (web/runtime.js), and check that it works before publishing it.
//
//   node scripts/make_snapshot.mjs [web/runtime]
//
// Reads the pinned runtime in that folder (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip,
// pyodide-lock.json, the numpy wheel) and writes, next to it:
//   snapshot.bin   the snapshot, gzip-compressed (~5 MB instead of ~21 MB on the wire; the
//                  worker inflates it with DecompressionStream)
//   numpy.tar.gz   the numpy bundle: the numpy wheel's files plus their bytecode (see BUNDLE)
//   snapshot.json  {format, pyodide_version, wasm_sha256, snapshot_sha256 (of the inflated
//                  image), snapshot_bytes, file_sha256 + file_bytes (of snapshot.bin as
//                  served), gzip, maker_sha256 (of this script), preimported, node,
//                  numpy: {file, wheel, wheel_sha256 (of the wheel it was made from, as in the
//                  lock file), tar_sha256 + tar_bytes (inflated), file_sha256 + file_bytes,
//                  files, bytecode}}
// A snapshot only works with the exact pyodide.asm.wasm it was made with: the page compares
// wasm_sha256 with the hash it pins, Pyodide itself checks its build id, and any failure
// makes the page start Python the plain way. The bundle's bytecode is that interpreter's too;
// the page uses the bundle only with the wheel its lock file pins, else the wheel itself.
//
// What goes in: the interpreter as loadPyodide leaves it, plus a few pure-Python / built-in
// standard-library modules the engine imports anyway (PREIMPORT). Not numpy: a snapshot taken
// after loading a shared library restores but crashes on use (shared/runtime-sources.md), so
// the page writes numpy's files after the restore. Not ctypes either (it creates FFI
// closures, i.e. wasm table entries a snapshot does not carry).
//
// Self-checks before writing, each in a fresh restore of the image: unpack the numpy wheel,
// import numpy, compute something (the page's fallback); then the same with the bundle,
// written by the page's own code (web/runtime.js), and numpy must compile none of its
// sources. Exit status 0 = written and checked; 1 = nothing written.
// Node 18+ (tested with Node 20).

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const FORMAT = 1;
const SITE_PACKAGES = "/lib/python3.12/site-packages";
// Standard-library modules the engine (gpt2web.*) and numpy import, beyond what loadPyodide has
// already imported; importing them here saves that work on every page load.
const PREIMPORT = ["__future__", "dataclasses", "datetime", "hashlib", "json", "numbers", "pickle"];

// The numpy bundle, next to snapshot.bin: an uncompressed ustar archive (gzip-compressed as a
// whole) of every file of the numpy wheel, plus a "checked-hash" .pyc for each .py (PEP 552:
// Python uses it only while the source's hash matches, so it can never run stale code).
// Without it, Python compiles numpy's ~80 modules from source on every page load (the wheel
// ships no bytecode), and the page unpacks the zip in Python; with it, the worker inflates
// one gzip stream while the interpreter starts and writes the files from JavaScript.
const BUNDLE = "numpy.tar.gz";
const MAKE_BUNDLE = `
import importlib.util, io, py_compile, tarfile, zipfile
SP = "${SITE_PACKAGES}"
with zipfile.ZipFile("/tmp/numpy.whl") as z:
    names = sorted(n for n in z.namelist() if not n.endswith("/"))
skipped = []
pycs = []
for name in names:
    if name.endswith(".py"):
        pyc = importlib.util.cache_from_source(name)
        try:
            py_compile.compile(f"{SP}/{name}", cfile=f"{SP}/{pyc}", dfile=f"{SP}/{name}", doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except py_compile.PyCompileError:
            skipped.append(name)
            continue
        pycs.append(pyc)
with tarfile.open("/tmp/numpy.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
    for name in sorted(names + pycs):
        with open(f"{SP}/{name}", "rb") as f:
            data = f.read()
        info = tarfile.TarInfo(name)  # mtime 0, owner root: the same bytes on every build
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
names = names + pycs
`;
// Counts the sources Python compiles from now on (in _compiled).
const COUNT_COMPILES = `
import importlib._bootstrap_external as _external
_compiled = []
_source_to_code = _external.SourceLoader.source_to_code
def _counting(self, data, path, *, _optimize=-1):
    _compiled.append(path)
    return _source_to_code(self, data, path, _optimize=_optimize)
_external.SourceLoader.source_to_code = _counting
`;
const CHECK_NUMPY = "import sys\n" +
  `getattr(sys.path_importer_cache.get("${SITE_PACKAGES}"), "invalidate_caches", lambda: None)()\n` +
  "import numpy, json\n" +
  "a = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)\n" +
  "json.dumps([float((a @ a.T).sum()), sys.version_info[:2] == (3, 12)])";
const CHECK_ANSWER = "[1134.0, true]";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const log = (msg) => console.log(`make_snapshot: ${msg}`);

function writeAtomic(file, bytes) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

async function main() {
  const dir = path.resolve(process.argv[2] ?? "web/runtime");
  const indexURL = dir + path.sep;  // under Node, Pyodide wants a path, not a file: URL
  const wasm = fs.readFileSync(path.join(dir, "pyodide.asm.wasm"));
  const lock = JSON.parse(fs.readFileSync(path.join(dir, "pyodide-lock.json"), "utf8"));
  const numpyFile = lock.packages?.numpy?.file_name;
  if (!numpyFile) throw new Error("pyodide-lock.json lists no numpy package");
  const numpyWheel = new Uint8Array(fs.readFileSync(path.join(dir, numpyFile)));
  if (sha256(numpyWheel) !== lock.packages.numpy.sha256) throw new Error(`${numpyFile}: sha256 mismatch`);

  const { loadPyodide, version } = await import(pathToFileURL(path.join(dir, "pyodide.mjs")).href);
  const quiet = { stdout: () => {}, stderr: (line) => console.warn("[python]", line) };

  let t0 = performance.now();
  const maker = await loadPyodide({ indexURL, _makeSnapshot: true, ...quiet });
  maker.runPython(PREIMPORT.map((m) => `import ${m}`).join("\n"));
  const image = maker.makeMemorySnapshot();  // a Uint8Array over its own buffer
  log(`interpreter started and imaged in ${((performance.now() - t0) / 1000).toFixed(2)} s ` +
    `(${(image.length / 1e6).toFixed(1)} MB)`);

  // Self-check of the fallback: what the page does after a restore without the bundle.
  t0 = performance.now();
  const restored = await loadPyodide({ indexURL, _loadSnapshot: image.slice(), ...quiet });
  restored.unpackArchive(numpyWheel, "wheel", { extractDir: SITE_PACKAGES });
  const answer = restored.runPython(CHECK_NUMPY);
  if (answer !== CHECK_ANSWER) throw new Error(`the restored interpreter answered ${answer}`);
  log(`restored and checked (numpy works) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

  // The numpy bundle: the wheel's files as unpacked above, plus their bytecode.
  restored.FS.writeFile("/tmp/numpy.whl", numpyWheel);
  restored.runPython(MAKE_BUNDLE);
  const tar = restored.FS.readFile("/tmp/numpy.tar");
  const [files, skipped] = JSON.parse(restored.runPython("__import__('json').dumps([len(names), skipped])"));
  if (skipped.length) log(`no bytecode for ${skipped.length} file(s) that do not compile: ${skipped.join(", ")}`);

  // Self-check of the bundle: what the page does with it after a restore; numpy must import
  // from the bytecode, without compiling any of its sources.
  t0 = performance.now();
  const { untar, writeFiles } = await import(new URL("../web/runtime.js", import.meta.url).href);
  const checker = await loadPyodide({ indexURL, _loadSnapshot: image.slice(), ...quiet });
  writeFiles(checker, untar(tar), SITE_PACKAGES);
  checker.runPython(COUNT_COMPILES);
  const bundleAnswer = checker.runPython(CHECK_NUMPY);
  if (bundleAnswer !== CHECK_ANSWER) throw new Error(`with the numpy bundle, the interpreter answered ${bundleAnswer}`);
  const compiled = JSON.parse(checker.runPython(
    `__import__("json").dumps([p for p in _compiled if p.startsWith("${SITE_PACKAGES}/numpy")])`));
  if (compiled.length) throw new Error(`numpy compiled ${compiled.length} source file(s) despite the bundle: ${compiled[0]}, ...`);
  const packedTar = gzipSync(tar, { level: 9 });
  log(`numpy bundle: ${files} files, ${(packedTar.length / 1e6).toFixed(1)} MB gzip; checked ` +
    `(numpy imports from its bytecode) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

  const packed = gzipSync(image, { level: 9 });
  const meta = {
    format: FORMAT,
    pyodide_version: version,
    wasm_sha256: sha256(wasm),
    snapshot_sha256: sha256(image),
    snapshot_bytes: image.length,
    file: "snapshot.bin",
    gzip: true,
    file_sha256: sha256(packed),
    file_bytes: packed.length,
    maker_sha256: sha256(fs.readFileSync(fileURLToPath(import.meta.url))),
    preimported: PREIMPORT,
    node: process.version,
    numpy: {
      file: BUNDLE,
      wheel: numpyFile,
      wheel_sha256: lock.packages.numpy.sha256,
      tar_sha256: sha256(tar),
      tar_bytes: tar.length,
      file_sha256: sha256(packedTar),
      file_bytes: packedTar.length,
      files,
      bytecode: "checked-hash",
    },
  };
  // The image first, its description last: a snapshot.json always describes the snapshot.bin
  // next to it (a crash in between leaves a json that no longer matches: rebuilt next time).
  writeAtomic(path.join(dir, "snapshot.bin"), packed);
  writeAtomic(path.join(dir, BUNDLE), packedTar);
  writeAtomic(path.join(dir, "snapshot.json"), JSON.stringify(meta, null, 1) + "\n");
  log(`wrote ${path.join(dir, "snapshot.bin")} (${(packed.length / 1e6).toFixed(1)} MB gzip), ${BUNDLE} ` +
    "and snapshot.json");
}

main().then(() => process.exit(0), (e) => {
  // The reason on the first line (setup_runtime.py shows that line), the stack after it.
  console.error(`make_snapshot: failed: ${e?.message ?? e}`);
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
