// Boots Python in the worker: Pyodide core, NumPy, the gpt2web engine wheel, its bridge module.
//
// Every URL is resolved against `base` (the folder holding worker.js), never against the
// page, so the worker also works when a page on another origin embeds the widget.
// NumPy and the engine are unpacked straight into site-packages rather than installed
// with loadPackage/micropip: same files, measured ~1 s faster (docs: shared/runtime-sources).
// Both wheels are downloaded while the interpreter starts, and checked against their
// published sha256 (pyodide-lock.json, wheels/index.json) before use.
//
// Memory snapshot: when the set-up step has built runtime/snapshot.bin (an image of the
// interpreter right after its start, scripts/make_snapshot.mjs), the interpreter is restored
// from it instead of being started. Measured (Chromium worker, busy 2-core machine): Python up
// at ~1.1 s instead of ~3.3 s, ready with NumPy and the engine at ~2.6 s instead of ~4.2 s
// (right after a restore Python runs slower for a while: V8 is still compiling Pyodide's wasm
// in the background, which a plain start has done during its own boot). The image only fits
// the exact pyodide.asm.wasm it was made from: snapshot.json must name the wasm this page
// pins, the inflated image must have the sha256 snapshot.json gives, and Pyodide checks its
// build id.
// Any failure (no snapshot, a mismatch, a broken download, a restore or a later set-up step
// that fails) means a plain start, with the reason logged and reported (`boot`, `bootInfo`).

import { WorkerError, fetchBytes, sha256Hex } from "./download.js";

const SITE_PACKAGES = "/lib/python3.12/site-packages";

// sha256 of pyodide.asm.wasm in the pinned release: CORE_SHA256 in scripts/setup_runtime.py
// (tests/test_startup.py checks they agree). A snapshot made from another wasm is never used.
export const PYODIDE_WASM_SHA256 = "a50dd1843f805a0b7c45b61037ee0d7b26dfe85efe0e18ef95a34ad24e401f5f";
const SNAPSHOT_FORMAT = 1;

// Progress {phase: "runtime", loaded: steps done, total: STEPS.length, file: step under way}.
const STEPS = ["Python interpreter", "NumPy", "gpt2web engine"];

async function fetchJSON(url, what) {
  let resp;
  try {
    resp = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    throw new WorkerError("runtime", `could not fetch ${what} (${url}): ${e.message}`);
  }
  if (!resp.ok) {
    throw new WorkerError("runtime", `could not fetch ${what}: ${url} answered ${resp.status} ` +
      `${resp.statusText} (run scripts/setup_runtime.py and scripts/build_wheel.py on the server)`);
  }
  return resp.json();
}

async function fetchVerified(url, sha256, what) {
  const bytes = await fetchBytes(url, { kind: "runtime", what });
  const actual = await sha256Hex(bytes);
  if (actual !== sha256) {
    throw new WorkerError("runtime", `${what} (${url}) is corrupt: sha256 ${actual.slice(0, 16)}..., ` +
      `expected ${sha256.slice(0, 16)}... (rebuild the runtime on the server)`);
  }
  return bytes;
}

/** Why a snapshot was not used: an Error whose message is the reason. */
class NoSnapshot extends Error {}

/** snapshot.json, checked against this page's pinned runtime; throws NoSnapshot otherwise. */
async function fetchSnapshotMeta(runtimeURL) {
  const url = new URL("snapshot.json", runtimeURL);
  let resp;
  try {
    resp = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    throw new NoSnapshot(`could not fetch ${url}: ${e.message}`);
  }
  if (!resp.ok) throw new NoSnapshot(`${url} answered ${resp.status} (no snapshot built)`);
  let meta;
  try {
    meta = await resp.json();
  } catch (e) {
    throw new NoSnapshot(`snapshot.json is not JSON: ${e.message}`);
  }
  if (meta?.format !== SNAPSHOT_FORMAT) throw new NoSnapshot(`snapshot.json has format ${meta?.format}`);
  if (meta.wasm_sha256 !== PYODIDE_WASM_SHA256) {
    throw new NoSnapshot(`the snapshot was made from another pyodide.asm.wasm ` +
      `(${String(meta.wasm_sha256).slice(0, 12)}..., this page pins ${PYODIDE_WASM_SHA256.slice(0, 12)}...)`);
  }
  if (!/^[0-9a-f]{64}$/.test(meta.snapshot_sha256 ?? "") || !(meta.snapshot_bytes > 0)) {
    throw new NoSnapshot("snapshot.json gives no sha256 or size for the image");
  }
  return meta;
}

/** Gunzip `bytes` into one buffer of `size` bytes (the size snapshot.json announces). */
async function inflate(bytes, size) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const out = new Uint8Array(size);
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > size) throw new NoSnapshot(`the image inflates to more than ${size} bytes`);
    out.set(value, n);
    n += value.length;
  }
  if (n !== size) throw new NoSnapshot(`the image inflates to ${n} bytes, snapshot.json says ${size}`);
  return out;
}

/** The verified image (Uint8Array) described by `meta`; throws NoSnapshot otherwise. */
async function snapshotImage(url, meta, signal) {
  let bytes;
  try {
    bytes = await fetchBytes(url, { kind: "runtime", what: "the interpreter snapshot", signal });
  } catch (e) {
    throw new NoSnapshot(e.message);
  }
  // gzip magic: inflate here. Without it, a server that sent the file with Content-Encoding:
  // gzip has had the browser inflate it already.
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await inflate(bytes, meta.snapshot_bytes);
    } catch (e) {
      throw e instanceof NoSnapshot ? e : new NoSnapshot(`could not inflate the image: ${e.message}`);
    }
  }
  const actual = await sha256Hex(bytes);
  if (actual !== meta.snapshot_sha256) {
    throw new NoSnapshot(`the image is corrupt: sha256 ${actual.slice(0, 12)}..., ` +
      `snapshot.json says ${meta.snapshot_sha256.slice(0, 12)}...`);
  }
  return bytes;
}

// Run right after a restore. The image carries the state of the interpreter that made it,
// including the seed of the `random` module's global generator: give each page its own.
// (The engine draws from its own random.Random(seed), and picks seeds with SystemRandom;
// this is for any other user of `random`.)
const AFTER_RESTORE = `
import sys
if "random" in sys.modules:
    sys.modules["random"].seed()
`;

/**
 * Start Python; resolves to {pyodide, bridge, ms, boot, bootInfo}.
 * `report(loaded, total, file)` gets the steps. `boot` is "snapshot" or "plain";
 * bootInfo = {boot, fallback (why not the snapshot, or null), ms: {step: milliseconds}}.
 */
export async function startRuntime(base, report) {
  const t0 = performance.now();
  const ms = {};  // step -> milliseconds since t0 when it ended
  const mark = (step) => { ms[step] = Math.round(performance.now() - t0); };
  const runtimeURL = new URL("runtime/", base);
  const wheelsURL = new URL("wheels/", base);
  report(0, STEPS.length, STEPS[0]);

  // Downloads first, all in parallel with the interpreter's own start below.
  const numpyWheel = fetchJSON(new URL("pyodide-lock.json", runtimeURL), "the Pyodide lock file")
    .then((lock) => {
      const np = lock.packages?.numpy;
      if (!np) throw new WorkerError("runtime", "pyodide-lock.json lists no numpy package");
      return fetchVerified(new URL(np.file_name, runtimeURL), np.sha256, np.file_name);
    });
  const engineWheel = fetchJSON(new URL("index.json", wheelsURL), "wheels/index.json")
    .then((index) => fetchVerified(new URL(index.wheel, wheelsURL), index.sha256, index.wheel));
  // The int8 WebAssembly SIMD kernels (web/kernels/), compiled meanwhile too. Optional:
  // without them (no SIMD, file missing) the engine multiplies in NumPy float32.
  const kernels = import(new URL("kernels/kernels.js", base).href)
    .then(async (k) => ({ k, module: await k.compileKernels(new URL("kernels/int8.wasm", base)) }));
  // The snapshot's description and image, both at once; the image download is dropped if
  // the description does not fit this runtime.
  const snapshotAbort = new AbortController();
  const snapshotMeta = fetchSnapshotMeta(runtimeURL);
  const snapshotBytes = snapshotMeta.then(
    (meta) => snapshotImage(new URL("snapshot.bin", runtimeURL), meta, snapshotAbort.signal),
    (e) => { snapshotAbort.abort(); throw e; });
  snapshotBytes.then(() => mark("snapshot_image"), () => {});
  // Avoid "unhandled rejection" noise if the interpreter fails first; errors still propagate.
  for (const p of [numpyWheel, engineWheel, kernels, snapshotMeta, snapshotBytes]) p.catch(() => {});

  let loadPyodide;
  try {
    ({ loadPyodide } = await import(new URL("pyodide.mjs", runtimeURL).href));
  } catch (e) {
    throw new WorkerError("runtime", `could not load Pyodide from ${runtimeURL}: ${e.message ?? e}`);
  }
  const options = {
    indexURL: runtimeURL.href,
    stdout: (line) => console.log("[python]", line),
    stderr: (line) => console.warn("[python]", line),
  };
  const plainStart = async () => {
    try {
      return await loadPyodide(options);
    } catch (e) {
      throw new WorkerError("runtime", `could not start Python (Pyodide from ${runtimeURL}): ${e.message ?? e}`);
    }
  };

  let pyodide = null;
  let boot = "plain";
  let fallback = null;
  const useSnapshot = await snapshotMeta.then(() => true, (e) => {
    fallback = e.message;
    return false;
  });
  mark("snapshot_checked");
  if (useSnapshot) {
    try {
      // Pyodide starts fetching pyodide.asm.wasm at once and awaits the image only then.
      // It keeps its options for good: hand it the image through a holder emptied after
      // the restore, so the 21 MB buffer is freed once copied into the interpreter's memory.
      const holder = { image: snapshotBytes, then(ok, ko) { return this.image.then(ok, ko); } };
      try {
        pyodide = await loadPyodide({ ...options, _loadSnapshot: holder });
      } finally {
        holder.image = null;
      }
      pyodide.runPython(AFTER_RESTORE);
      boot = "snapshot";
    } catch (e) {
      fallback = `restoring the snapshot failed: ${e?.message ?? e}`;
      pyodide = null;
    }
  }
  if (!pyodide) {
    snapshotAbort.abort();
    pyodide = await plainStart();
  }
  mark("interpreter");

  const numpy = await numpyWheel;
  const engine = await engineWheel;
  mark("downloads");
  let module;
  try {
    module = await setUpEngine(pyodide, { kernels, numpy, engine, report, mark });
  } catch (e) {
    if (boot !== "snapshot") throw e;
    // Whatever broke after a restore, a plain start may still work: try it once.
    fallback = `after the snapshot restore, ${e.message}`;
    console.warn(`gpt2web: ${fallback}; starting Python the plain way`);
    boot = "plain";
    report(0, STEPS.length, STEPS[0]);
    pyodide = await plainStart();
    mark("interpreter");
    module = await setUpEngine(pyodide, { kernels, numpy, engine, report, mark });
  }
  if (fallback && boot === "plain") console.info(`gpt2web: plain Python start (no snapshot: ${fallback})`);
  // Look each bridge function up once: every attribute access would make a new proxy.
  const bridge = new Proxy({}, { get: (known, name) => (known[name] ??= module[name]) });
  const total = performance.now() - t0;
  ms.total = Math.round(total);
  report(STEPS.length, STEPS.length, "ready");
  return { pyodide, bridge, ms: total, boot, bootInfo: { boot, fallback, ms } };
}

/** Kernels, NumPy, the engine, in a started interpreter; resolves to the bridge module. */
async function setUpEngine(pyodide, { kernels, numpy, engine, report, mark }) {
  // Before any model is built: GPT2() keeps int8 weights int8 only if the kernels are there.
  try {
    const { k, module } = await kernels;
    await k.installKernels(pyodide, module);
  } catch (e) {
    console.warn("gpt2web: int8 kernels unavailable, using NumPy float32:", e?.message ?? e);
  }
  mark("kernels");
  report(1, STEPS.length, STEPS[1]);
  try {
    pyodide.unpackArchive(numpy, "wheel", { extractDir: SITE_PACKAGES });
    pyodide.runPython("import numpy");
    mark("numpy");
    report(2, STEPS.length, STEPS[2]);
    pyodide.unpackArchive(engine, "wheel", { extractDir: SITE_PACKAGES });
    const module = pyodide.pyimport("gpt2web.bridge");
    mark("engine");
    return module;
  } catch (e) {
    // A Python traceback's last line says what went wrong; the rest is noise for a reader.
    const last = String(e?.message ?? e).trim().split("\n").pop();
    throw new WorkerError("runtime", `could not set up the engine in Python: ${last} ` +
      "(rebuild the wheel with scripts/build_wheel.py)");
  }
}

const MEMORY_ERROR = /out of memory|Cannot enlarge memory|OOM|Array buffer allocation failed/i;

/**
 * Call a bridge function; return its result or throw a WorkerError.
 * The bridge answers JSON, so nothing here holds a Python object afterwards.
 */
export function callPython(bridge, fn, ...args) {
  let text;
  try {
    text = bridge[fn](...args);
  } catch (e) {
    // Only failures of the interpreter itself get here (the bridge catches Python errors).
    const message = String(e?.message ?? e);
    if (MEMORY_ERROR.test(message) || e instanceof RangeError) {
      throw new WorkerError("memory", `the browser ran out of memory (${message.split("\n").pop()}); ` +
        "close other tabs or pick a smaller model");
    }
    throw new WorkerError("runtime", `Python failed: ${message}`);
  }
  const answer = JSON.parse(text);
  if (answer.error) throw new WorkerError(answer.error.kind, answer.error.message);
  return answer.ok;
}
