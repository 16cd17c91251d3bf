// Boots Python in the worker: Pyodide core, NumPy, the gpt2web engine wheel, its bridge module.
//
// Every URL is resolved against `base` (the folder holding worker.js), never against the
// page, so the worker also works when a page on another origin embeds the widget.
// NumPy and the engine are unpacked straight into site-packages rather than installed
// with loadPackage/micropip: same files, measured ~1 s faster (docs: shared/runtime-sources).
// Both wheels are downloaded while the interpreter starts, and checked against their
// published sha256 (pyodide-lock.json, wheels/index.json) before use.

import { WorkerError, fetchBytes, sha256Hex } from "./download.js";

const SITE_PACKAGES = "/lib/python3.12/site-packages";

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

/**
 * Start Python; resolves to {pyodide, bridge, ms}. `report(loaded, total, file)` gets the steps.
 */
export async function startRuntime(base, report) {
  const t0 = performance.now();
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
  // Avoid "unhandled rejection" noise if the interpreter fails first; errors still propagate.
  numpyWheel.catch(() => {});
  engineWheel.catch(() => {});
  kernels.catch(() => {});

  let pyodide;
  try {
    const { loadPyodide } = await import(new URL("pyodide.mjs", runtimeURL).href);
    pyodide = await loadPyodide({
      indexURL: runtimeURL.href,
      stdout: (line) => console.log("[python]", line),
      stderr: (line) => console.warn("[python]", line),
    });
  } catch (e) {
    if (e instanceof WorkerError) throw e;
    throw new WorkerError("runtime", `could not start Python (Pyodide from ${runtimeURL}): ${e.message ?? e}`);
  }
  // Before any model is built: GPT2() keeps int8 weights int8 only if the kernels are there.
  try {
    const { k, module } = await kernels;
    await k.installKernels(pyodide, module);
  } catch (e) {
    console.warn("gpt2web: int8 kernels unavailable, using NumPy float32:", e?.message ?? e);
  }
  report(1, STEPS.length, STEPS[1]);
  const numpy = await numpyWheel;
  const engine = await engineWheel;
  let module;
  try {
    pyodide.unpackArchive(numpy, "wheel", { extractDir: SITE_PACKAGES });
    pyodide.runPython("import numpy");
    report(2, STEPS.length, STEPS[2]);
    pyodide.unpackArchive(engine, "wheel", { extractDir: SITE_PACKAGES });
    module = pyodide.pyimport("gpt2web.bridge");
  } catch (e) {
    // A Python traceback's last line says what went wrong; the rest is noise for a reader.
    const last = String(e?.message ?? e).trim().split("\n").pop();
    throw new WorkerError("runtime", `could not set up the engine in Python: ${last} ` +
      "(rebuild the wheel with scripts/build_wheel.py)");
  }
  // Look each bridge function up once: every attribute access would make a new proxy.
  const bridge = new Proxy({}, { get: (known, name) => (known[name] ??= module[name]) });
  const ms = performance.now() - t0;
  report(STEPS.length, STEPS.length, "ready");
  return { pyodide, bridge, ms };
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
