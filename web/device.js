// What this device can run, checked before anything big is downloaded.
//
// WebAssembly SIMD: the int8 kernels need it. Without it the engine runs on NumPy: the same
// probabilities (it is the reference path), several times slower, and int8 weights become
// float32 (4x the memory). Memory: a model must fit in WebAssembly's 4 GB, and in what the
// device reports (navigator.deviceMemory, in GB, where the browser gives it).
//
// In the worker, the loader calls checkDevice(name, manifest) once the manifest is in: a model
// that cannot fit is refused at once, naming what it needs. On the page, an element with the id
// "device-note" says when there is no SIMD.

import { WorkerError } from "./download.js";

// The smallest module using a SIMD instruction: one function returning v128.const 0.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

const WASM_LIMIT = 4 * 2 ** 30;  // wasm32: 65,536 pages of 64 kB
const RUNTIME_BYTES = 130e6;     // Python, NumPy, the engine (measured: ~115 MB beside GPT-2 small)

/**
 * Throw a WorkerError ("runtime") at once if this page may not compile WebAssembly at all: no
 * WebAssembly, or a Content-Security-Policy without 'wasm-unsafe-eval' (Pyodide would otherwise
 * wait forever for a module the browser refused to compile).
 */
export function checkWebAssembly() {
  if (typeof WebAssembly !== "object") {
    throw new WorkerError("runtime", "this browser has no WebAssembly, which the model needs to run");
  }
  try {
    new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  } catch (e) {
    throw new WorkerError("runtime", `this page may not compile WebAssembly (${e.message.split("\n")[0]}); ` +
      "the site's Content-Security-Policy needs 'wasm-unsafe-eval' in script-src");
  }
}

export function hasSimd() {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

const gb = (n) => `${(n / 1e9).toFixed(n < 1e10 ? 1 : 0)} GB`;

/** Bytes of memory model `manifest` needs in this browser (about). */
export function memoryNeeded(manifest, simd = hasSimd()) {
  const bytes = manifest.shards.reduce((sum, s) => sum + (Number(s.bytes) || 0), 0);
  const dtype = manifest.dtype;
  // Without the kernels every matrix becomes float32, next to the shard it came from.
  const weights = dtype === "int8" && !simd ? 5 * bytes : dtype === "float16" ? 3 * bytes : bytes;
  const c = manifest.config ?? {};
  const kv = 2 * 4 * (c.n_layer ?? 0) * (c.n_ctx ?? c.n_positions ?? 0) * (c.n_embd ?? 0);
  return { bytes, need: weights + kv + RUNTIME_BYTES };
}

/**
 * Throw a WorkerError ("memory") if model `name` cannot run here; otherwise {simd, need}.
 * `deviceMemory`: the device's memory in GB (navigator.deviceMemory where there is one).
 */
export function checkDevice(name, manifest, { simd = hasSimd(), deviceMemory = globalThis.navigator?.deviceMemory } = {}) {
  const { bytes, need } = memoryNeeded(manifest, simd);
  const path = simd ? "" : " (this browser has no WebAssembly SIMD, so the weights are unpacked to float32)";
  if (need > WASM_LIMIT) {
    throw new WorkerError("memory", `model "${name}" (${gb(bytes)} of shards) needs about ${gb(need)} of ` +
      `memory${path}, more than a browser page can have (4 GB): run it with the command line instead`);
  }
  if (deviceMemory > 0 && need > 0.75 * deviceMemory * 1e9) {
    throw new WorkerError("memory", `model "${name}" needs about ${gb(need)} of memory${path}; this device ` +
      `reports about ${deviceMemory} GB: pick a smaller model, or use a device with more memory`);
  }
  return { simd, need };
}

// On a page: say at once when the fast path is out of reach.
if (typeof document !== "undefined") {
  const note = document.getElementById("device-note");
  if (note && !hasSimd()) {
    note.textContent = "This browser has no WebAssembly SIMD: the model runs on the NumPy path instead of " +
      "the int8 kernels. The probabilities are the same; generating is several times slower.";
    note.hidden = false;
  }
}
