// Boots Python in the worker: Pyodide core, NumPy, the gpt2web engine wheel, its bridge module.
//
// Every URL is resolved against `base` (the folder holding worker.js), never against the
// page, so the worker also works when a page on another origin embeds the widget.
// Wheels are unpacked straight into site-packages rather than installed with
// loadPackage/micropip: same files, measured ~1 s faster (docs: shared/runtime-sources).
// Everything is downloaded while the interpreter starts, and checked against its published
// sha256 (pyodide-lock.json, wheels/index.json, snapshot.json) before use.
//
// Memory snapshot: when the set-up step has built runtime/snapshot.bin (an image of the
// interpreter right after its start, scripts/make_snapshot.mjs), the interpreter is restored
// from it instead of being started. Pyodide gets the image's buffer as soon as snapshot.json
// gives its size and compiles pyodide.asm.wasm (the longest step of a restore) while the image
// downloads and inflates into it; the image is checked before Pyodide copies it in. The image
// only fits the exact pyodide.asm.wasm it was made from: snapshot.json must name the wasm this
// page pins, the image must have the sha256 snapshot.json gives, and Pyodide checks its build id.
//
// NumPy bundle: the same set-up step writes runtime/numpy.tar.gz, the numpy wheel's files plus
// their bytecode, compiled by the same interpreter (the wheel ships none: Python would compile
// numpy's ~80 modules on every page load). The worker inflates it while the interpreter starts
// and writes the files from JavaScript, and numpy imports without compiling anything. It is
// used only if it was made from the wheel pyodide-lock.json pins; else that wheel is unpacked.
//
// Measured (headless Chromium, busy 2-core machine, median of 7, a persistent browser profile
// as a reader has: scripts/measure_startup.py --persistent): on a repeat visit, numpy is
// imported at ~1.05 s instead of ~1.7 s, everything is ready at ~1.1 s instead of ~1.7 s, and
// the first candidate bars show ~1.6 s after the page opens instead of ~2.15 s; on a first
// visit, ready at ~1.65 s / bars at ~2.5 s instead of ~2.1 s / ~2.95 s. Right after a restore,
// Python runs 2-4x slower for about a second (V8 runs Pyodide's wasm on its baseline tier
// until optimised code is ready; its code cache only holds what was hot on earlier visits):
// every step left to Python early on costs more than it would later.
// Any failure (no snapshot, a mismatch, a broken download, a restore or a later set-up step
// that fails) means a plain start with the numpy wheel (ready at ~3.3 s, measured off the
// record), with the reason logged and reported (`boot`, `bootInfo`).

import { WorkerError, fetchBytes, sha256Hex } from "./download.js";
import { checkWebAssembly } from "./device.js";

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
  if (!/^[0-9a-f]{64}$/.test(meta.snapshot_sha256 ?? "") || !/^[0-9a-f]{64}$/.test(meta.file_sha256 ?? "") ||
      !(meta.snapshot_bytes > 0)) {
    throw new NoSnapshot("snapshot.json gives no sha256 or size for the image");
  }
  return meta;
}

/** Gunzip `bytes` into `out` (a new buffer if not given), of `size` bytes (as snapshot.json says). */
async function inflate(bytes, size, out = new Uint8Array(size)) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > size) throw new Error(`it inflates to more than ${size} bytes`);
    out.set(value, n);
    n += value.length;
  }
  if (n !== size) throw new Error(`it inflates to ${n} bytes, snapshot.json says ${size}`);
  return out;
}

/** fetchBytes for the snapshot's files: a failure is a NoSnapshot. */
function download(url, what, signal) {
  return fetchBytes(url, { kind: "runtime", what, signal }).catch((e) => { throw new NoSnapshot(e.message); });
}

/**
 * The bytes of `download`, inflated and checked; throws NoSnapshot. From snapshot.json:
 * `size` and `sha256` of the inflated bytes, `fileSha256` of the gzip file as served; `into`:
 * the buffer to inflate into (optional). A gzip file is checked as it is, while it inflates
 * (4x fewer bytes to hash; gzip's own CRC-32 and length check the inflating). Without the
 * gzip magic, a server that sent the file with Content-Encoding: gzip has had the browser
 * inflate it: the inflated bytes are checked.
 */
async function verifiedFile(download, { size, sha256, fileSha256, into }, what) {
  const bytes = await download;
  const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const want = gzip ? fileSha256 : sha256;
  const hash = sha256Hex(bytes);  // runs off this thread
  const checked = async () => {
    const actual = await hash;
    if (actual !== want) {
      throw new NoSnapshot(`${what} is corrupt: sha256 ${actual.slice(0, 12)}..., ` +
        `snapshot.json says ${String(want).slice(0, 12)}...`);
    }
  };
  let inflated = bytes;
  if (gzip) {
    try {
      inflated = await inflate(bytes, size, into);
    } catch (e) {
      await checked();  // a corrupt download is the likelier reason: say so first
      throw new NoSnapshot(`could not inflate ${what}: ${e.message}`);
    }
  } else if (bytes.length !== size) {
    throw new NoSnapshot(`${what} has ${bytes.length} bytes, snapshot.json says ${size}`);
  } else if (into) {
    inflated = into;
    into.set(bytes);
  }
  await checked();
  return inflated;
}

/**
 * The snapshot image at `url`: downloaded at once, inflated into a buffer made as soon as
 * snapshotMeta gives its size, and checked. {buffer: promise of that buffer (before it is
 * filled), image: promise of the same buffer, complete and checked (or NoSnapshot)}.
 */
function snapshotImage(url, snapshotMeta, signal) {
  const file = download(url, "the image", signal);
  file.catch(() => {});  // aborted when snapshot.json does not fit: then nothing awaits it
  const buffer = snapshotMeta.then((meta) => new Uint8Array(meta.snapshot_bytes));
  const image = Promise.all([snapshotMeta, buffer]).then(([meta, into]) => verifiedFile(file,
    { size: meta.snapshot_bytes, sha256: meta.snapshot_sha256, fileSha256: meta.file_sha256, into }, "the image"));
  return { buffer, image };
}

/**
 * The regular files of an uncompressed ustar archive, as [{path, bytes}] (`bytes` are views
 * into `tar`, not copies). Paths must be relative and stay below the folder they go to.
 */
export function untar(tar) {
  const files = [];
  const decoder = new TextDecoder();
  const field = (at, length) => {
    const raw = tar.subarray(at, at + length);
    const end = raw.indexOf(0);
    return decoder.decode(end < 0 ? raw : raw.subarray(0, end));
  };
  let at = 0;
  while (at + 512 <= tar.length && tar[at] !== 0) {  // the archive ends with zero blocks
    if (field(at + 257, 6) !== "ustar") throw new Error(`no ustar header at byte ${at}`);
    const name = field(at, 100);
    const prefix = field(at + 345, 155);
    const type = tar[at + 156];
    let path = prefix ? `${prefix}/${name}` : name;
    if (type === 0x35) path = path.replace(/\/+$/, "");  // a folder: "name/"
    const size = parseInt(field(at + 124, 12).trim() || "0", 8);
    at += 512;
    if (!(size >= 0) || at + size > tar.length) throw new Error(`${path}: truncated`);
    if (path.startsWith("/") || path.split("/").some((part) => part === ".." || part === "")) {
      throw new Error(`refusing the path ${JSON.stringify(path)}`);
    }
    if (type === 0x30 || type === 0) files.push({ path, bytes: tar.subarray(at, at + size) });
    else if (type !== 0x35) throw new Error(`${path}: unsupported entry type ${String.fromCharCode(type)}`);
    at += Math.ceil(size / 512) * 512;
  }
  return files;
}

/** Write `files` ([{path, bytes}], from untar) below `dir` in the interpreter's file system. */
export function writeFiles(pyodide, files, dir) {
  const made = new Set();
  for (const { path, bytes } of files) {
    const full = `${dir}/${path}`;
    const folder = full.slice(0, full.lastIndexOf("/"));
    if (!made.has(folder)) {
      pyodide.FS.mkdirTree(folder);
      made.add(folder);
    }
    // canOwn: the file keeps the view into the archive instead of a copy of it.
    pyodide.FS.writeFile(full, bytes, { canOwn: true });
  }
}

/**
 * The numpy bundle snapshot.json describes (scripts/make_snapshot.mjs), as files to write
 * into site-packages: those of the numpy wheel the lock file pins (`wheel`, its entry there),
 * plus their bytecode. Throws NoSnapshot (the reason) when there is none or it does not fit.
 */
async function numpyBundle(runtimeURL, meta, wheel) {
  const bundle = meta.numpy;
  if (!bundle || typeof bundle.file !== "string") throw new NoSnapshot("snapshot.json describes no numpy bundle");
  if (bundle.wheel_sha256 !== wheel.sha256) {
    throw new NoSnapshot(`the numpy bundle was made from another wheel than ${wheel.file_name} ` +
      "(the one pyodide-lock.json pins)");
  }
  if (!/^[0-9a-f]{64}$/.test(bundle.tar_sha256 ?? "") || !/^[0-9a-f]{64}$/.test(bundle.file_sha256 ?? "") ||
      !(bundle.tar_bytes > 0)) {
    throw new NoSnapshot("snapshot.json gives no sha256 or size for the numpy bundle");
  }
  const tar = await verifiedFile(download(new URL(bundle.file, runtimeURL), "the numpy bundle"),
    { size: bundle.tar_bytes, sha256: bundle.tar_sha256, fileSha256: bundle.file_sha256 }, "the numpy bundle");
  try {
    return untar(tar);
  } catch (e) {
    throw new NoSnapshot(`the numpy bundle is not a tar archive: ${e.message}`);
  }
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
 * bootInfo = {boot, fallback (why not the snapshot, or null), numpy ("bundle" or "wheel"),
 * numpy_fallback (why not the bundle, or null), ms: {step: milliseconds}}.
 */
export async function startRuntime(base, report) {
  const t0 = performance.now();
  const ms = {};  // step -> milliseconds since t0 when it ended
  const mark = (step) => { ms[step] = Math.round(performance.now() - t0); };
  checkWebAssembly();  // a page that may not compile WebAssembly is told so at once
  const runtimeURL = new URL("runtime/", base);
  const wheelsURL = new URL("wheels/", base);
  report(0, STEPS.length, STEPS[0]);

  // Downloads first, all in parallel with the interpreter's own start below.
  const numpyEntry = fetchJSON(new URL("pyodide-lock.json", runtimeURL), "the Pyodide lock file")
    .then((lock) => {
      const np = lock.packages?.numpy;
      if (!np) throw new WorkerError("runtime", "pyodide-lock.json lists no numpy package");
      return np;
    });
  // The numpy wheel, checked against the lock file: fetched only if the bundle is not used.
  let wheelDownload = null;
  const numpyWheel = () => (wheelDownload ??= numpyEntry.then(
    (np) => fetchVerified(new URL(np.file_name, runtimeURL), np.sha256, np.file_name)));
  const engineWheel = fetchJSON(new URL("index.json", wheelsURL), "wheels/index.json")
    .then((index) => fetchVerified(new URL(index.wheel, wheelsURL), index.sha256, index.wheel));
  // The int8 WebAssembly SIMD kernels (web/kernels/), compiled meanwhile too. Optional:
  // without them (no SIMD, file missing) the engine multiplies in NumPy float32.
  const kernels = import(new URL("kernels/kernels.js", base).href)
    .then(async (k) => ({ k, module: await k.compileKernels(new URL("kernels/int8.wasm", base)) }));
  // The snapshot's description and image, both at once (the image is the longest download
  // of a repeat visit); the image is dropped if the description does not fit.
  // (No closure here may hold the image or its download: Pyodide keeps closures made in
  // this function, e.g. `options.stdout`, and with them the variables they share.)
  const snapshotAbort = new AbortController();
  const snapshotMeta = fetchSnapshotMeta(runtimeURL);
  snapshotMeta.catch(() => snapshotAbort.abort());
  const snapshot = snapshotImage(new URL("snapshot.bin", runtimeURL), snapshotMeta, snapshotAbort.signal);
  let imageFailure = null;
  snapshot.image.then(() => mark("snapshot_image"), (e) => { imageFailure = e; });
  // NumPy: the bundle snapshot.json describes (downloaded, inflated and unpacked in memory
  // while the interpreter starts), else the wheel, whose download starts as soon as the
  // bundle is out of the question.
  let numpyFallback = null;
  const numpySource = Promise.all([snapshotMeta, numpyEntry])
    .then(([meta, wheel]) => numpyBundle(runtimeURL, meta, wheel))
    .then((files) => {
      mark("numpy_bundle");
      return { from: "bundle", files };
    }, (e) => {
      numpyFallback = e.message;
      return numpyWheel().then((wheel) => ({ from: "wheel", wheel }));
    });
  // Avoid "unhandled rejection" noise if the interpreter fails first; errors still propagate.
  for (const p of [numpyEntry, numpySource, engineWheel, kernels, snapshotMeta, snapshot.buffer, snapshot.image]) {
    p.catch(() => {});
  }

  // For a restore, the sooner Pyodide has its script (pyodide.asm.js, 1.2 MB; loaded with
  // import() in a module worker), the sooner it compiles its wasm (see below): start loading
  // it as soon as a restore is on, not one round trip later. Pyodide's own import() finds the
  // same module. (Not for a plain start: there, loadPyodide must start its wasm download first.)
  snapshotMeta.then(() => import(new URL("pyodide.asm.js", runtimeURL).href)).catch(() => {});
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
    // Pyodide (0.27.7) awaits the image, sizes the interpreter's memory by its length, compiles
    // pyodide.asm.wasm (the longest step of a restore), runs the fsInit hook, and only then
    // copies the image in. So it gets the image's buffer at once and compiles while the image
    // downloads and inflates into it; fsInit waits until the image is complete and checked.
    // A failed check wipes the image's header, which makes Pyodide refuse it (a failing
    // fsInit alone would not stop it). Pyodide keeps its options for good: they reach the
    // image only through `holder`, emptied after the restore, so that the 21 MB buffer is
    // freed once copied into the interpreter's memory.
    const holder = { buffer: await snapshot.buffer.catch(() => null), image: snapshot.image };
    const imageReady = async () => {
      mark("wasm_ready");
      try {
        await holder.image;
      } catch {
        holder.buffer.fill(0, 0, 64);
      }
    };
    try {
      pyodide = await loadPyodide({
        ...options,
        _loadSnapshot: {
          then(ok, ko) {  // snapshot_wanted: Pyodide's own files are loaded
            mark("snapshot_wanted");
            const failure = imageFailure ?? (holder.buffer ? null : new Error("no image buffer"));
            return (failure ? Promise.reject(failure) : Promise.resolve(holder.buffer)).then(ok, ko);
          },
        },
        fsInit: imageReady,
      });
      if (imageFailure) throw imageFailure;  // (Pyodide has refused the wiped image already)
      pyodide.runPython(AFTER_RESTORE);
      boot = "snapshot";
    } catch (e) {
      fallback = `restoring the snapshot failed: ${(imageFailure ?? e)?.message ?? e}`;
      pyodide = null;
    } finally {
      holder.buffer = holder.image = null;
    }
  }
  if (!pyodide) {
    snapshotAbort.abort();
    pyodide = await plainStart();
  }
  mark("interpreter");

  let numpy = await numpySource;
  const engine = await engineWheel;
  mark("downloads");
  let module;
  try {
    module = await setUpEngine(pyodide, { kernels, numpy, engine, report, mark });
  } catch (e) {
    if (boot !== "snapshot" && numpy.from !== "bundle") throw e;
    // Whatever broke after a restore or with the bundle, the plain way may still work:
    // a fresh interpreter and the wheel, once.
    const reason = `${boot === "snapshot" ? "after the snapshot restore" : "with the numpy bundle"}, ${e.message}`;
    if (boot === "snapshot") fallback = reason;
    if (numpy.from === "bundle") numpyFallback = reason;
    console.warn(`gpt2web: ${reason}; starting Python the plain way`);
    boot = "plain";
    report(0, STEPS.length, STEPS[0]);
    pyodide = await plainStart();
    mark("interpreter");
    numpy = { from: "wheel", wheel: await numpyWheel() };
    module = await setUpEngine(pyodide, { kernels, numpy, engine, report, mark });
  }
  if (fallback && boot === "plain") console.info(`gpt2web: plain Python start (no snapshot: ${fallback})`);
  if (numpyFallback && numpy.from === "wheel") console.info(`gpt2web: numpy from its wheel (no bundle: ${numpyFallback})`);
  // Look each bridge function up once: every attribute access would make a new proxy.
  const bridge = new Proxy({}, { get: (known, name) => (known[name] ??= module[name]) });
  const total = performance.now() - t0;
  ms.total = Math.round(total);
  report(STEPS.length, STEPS.length, "ready");
  wheelDownload = null;  // (numpyWheel's closure would keep the wheel alive)
  const bootInfo = { boot, fallback, numpy: numpy.from, numpy_fallback: numpyFallback, ms };
  return { pyodide, bridge, ms: total, boot, bootInfo };
}

// After the numpy files are in place. The import system caches each folder's listing until
// the folder's mtime changes, which files written from JavaScript within the same clock tick
// may not do: drop site-packages' listing. (Not importlib.invalidate_caches(): it imports
// importlib.metadata and the email package, ~0.1 s.)
const IMPORT_NUMPY = `
import sys
_finder = sys.path_importer_cache.get("${SITE_PACKAGES}")
if _finder is not None:
    _finder.invalidate_caches()
del _finder
import numpy
`;

/**
 * Kernels, NumPy, the engine, in a started interpreter; resolves to the bridge module.
 * `numpy` is {from: "bundle", files} or {from: "wheel", wheel}.
 */
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
  // A Python traceback's last line says what went wrong; the rest is noise for a reader.
  const lastLine = (e) => String(e?.message ?? e).trim().split("\n").pop();
  try {
    if (numpy.files) writeFiles(pyodide, numpy.files, SITE_PACKAGES);
    else pyodide.unpackArchive(numpy.wheel, "wheel", { extractDir: SITE_PACKAGES });
    mark("numpy_files");
    pyodide.runPython(IMPORT_NUMPY);
    mark("numpy");
  } catch (e) {
    throw new WorkerError("runtime", `could not import numpy (from its ${numpy.from}): ${lastLine(e)} ` +
      "(run scripts/setup_runtime.py on the server)");
  }
  report(2, STEPS.length, STEPS[2]);
  try {
    pyodide.unpackArchive(engine, "wheel", { extractDir: SITE_PACKAGES });
    mark("engine_files");
    const module = pyodide.pyimport("gpt2web.bridge");
    mark("engine");
    return module;
  } catch (e) {
    throw new WorkerError("runtime", `could not set up the engine in Python: ${lastLine(e)} ` +
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
