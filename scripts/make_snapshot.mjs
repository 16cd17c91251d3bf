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
//   snapshot.json  {format, pyodide_version, wasm_sha256, snapshot_sha256 (of the inflated
//                  image), snapshot_bytes, file_sha256 + file_bytes (of snapshot.bin as
//                  served), gzip, maker_sha256 (of this script), preimported, node}
// A snapshot only works with the exact pyodide.asm.wasm it was made with: the page compares
// wasm_sha256 with the hash it pins, Pyodide itself checks its build id, and any failure
// makes the page start Python the plain way.
//
// What goes in: the interpreter as loadPyodide leaves it, plus a few pure-Python / built-in
// standard-library modules the engine imports anyway (PREIMPORT). Not numpy: a snapshot taken
// after loading a shared library restores but crashes on use (shared/runtime-sources.md), so
// the page unpacks the numpy wheel after the restore. Not ctypes either (it creates FFI
// closures, i.e. wasm table entries a snapshot does not carry).
//
// Self-check before writing: restore the image in a fresh interpreter, unpack the numpy wheel,
// import numpy, compute something. Exit status 0 = written and checked; 1 = nothing written.
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

  // Self-check: exactly what the page does after a restore.
  t0 = performance.now();
  const restored = await loadPyodide({ indexURL, _loadSnapshot: image.slice(), ...quiet });
  restored.unpackArchive(numpyWheel, "wheel", { extractDir: SITE_PACKAGES });
  const answer = restored.runPython(
    "import numpy, json, sys\n" +
    "a = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)\n" +
    "json.dumps([float((a @ a.T).sum()), sys.version_info[:2] == (3, 12)])");
  if (answer !== "[1134.0, true]") throw new Error(`the restored interpreter answered ${answer}`);
  log(`restored and checked (numpy works) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

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
  };
  // The image first, its description last: a snapshot.json always describes the snapshot.bin
  // next to it (a crash in between leaves a json that no longer matches: rebuilt next time).
  writeAtomic(path.join(dir, "snapshot.bin"), packed);
  writeAtomic(path.join(dir, "snapshot.json"), JSON.stringify(meta, null, 1) + "\n");
  log(`wrote ${path.join(dir, "snapshot.bin")} (${(packed.length / 1e6).toFixed(1)} MB gzip) and snapshot.json`);
}

main().then(() => process.exit(0), (e) => {
  // The reason on the first line (setup_runtime.py shows that line), the stack after it.
  console.error(`make_snapshot: failed: ${e?.message ?? e}`);
  if (e?.stack) console.error(e.stack);
  process.exit(1);
});
