// The WebAssembly SIMD kernels (kernels/int8.c: int8 matrix products; kernels/f32.c: layer norm,
// GELU, attention), installed into a running Pyodide.
//
//   import { installKernels } from "./kernels/kernels.js";
//   const pyodide = await loadPyodide({ indexURL });
//   await installKernels(pyodide, new URL("./kernels/int8.wasm", import.meta.url));
//
// Call it once, after loadPyodide and before the model is built: the Python side
// (gpt2web.kernels) finds the JS module "gpt2web_kernels" when GPT2(...) is constructed and then
// keeps the weights in int8. If it throws (no WebAssembly SIMD, e.g. Safari < 16.4), carry on:
// the engine falls back to NumPy float32.
//
// Zero copies: the kernel module imports Pyodide's own WebAssembly.Memory, so a NumPy array's
// data address (arr.__array_interface__["data"][0]) is directly a pointer the kernel can read.
// The module has no data segments and uses no C stack: it writes only into the arrays it is given
// (scripts/build_kernels.py checks this on every build).

export const KERNELS_JS_MODULE = "gpt2web_kernels";

function pyodideMemory(pyodide) {
  const m = pyodide._module;
  const candidates = [
    m.wasmMemory,
    m.LDSO && m.LDSO.loadedLibsByName && m.LDSO.loadedLibsByName.__main__ &&
      m.LDSO.loadedLibsByName.__main__.exports && m.LDSO.loadedLibsByName.__main__.exports.memory,
  ];
  for (const mem of candidates) {
    if (mem instanceof WebAssembly.Memory && mem.buffer === m.HEAPU8.buffer) return mem;
  }
  throw new Error("gpt2web kernels: cannot find Pyodide's WebAssembly.Memory " +
    "(this Pyodide version is not supported; the engine will use NumPy)");
}

// `source`: the URL of int8.wasm, its bytes (ArrayBuffer / typed array), or a compiled
// WebAssembly.Module (see compileKernels).
async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  let bytes = source;
  if (typeof source === "string" || source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) {
      throw new Error(`gpt2web kernels: ${source} answered HTTP ${response.status}`);
    }
    bytes = await response.arrayBuffer();
  }
  if (!WebAssembly.validate(bytes)) {
    throw new Error("gpt2web kernels: this browser cannot run WebAssembly SIMD (or the " +
      "file is not the kernel module); the engine will use NumPy");
  }
  return WebAssembly.compile(bytes);
}

// Fetch and compile int8.wasm without Pyodide, e.g. while the interpreter starts; pass the
// result to installKernels.
export function compileKernels(wasm = new URL("./int8.wasm", import.meta.url)) {
  return compile(wasm);
}

// Returns { functions, memoryBytes } once the module is registered; throws with a readable
// message otherwise. `wasm`: URL of int8.wasm (default: next to this file), its bytes, or the
// WebAssembly.Module from compileKernels.
export async function installKernels(pyodide, wasm = new URL("./int8.wasm", import.meta.url)) {
  const memory = pyodideMemory(pyodide);
  const module = await compile(wasm);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports;
  const api = {
    gemm_int8: ex.gemm_int8,
    pack_rows4x16: ex.pack_rows4x16,
    scratch_bytes: ex.scratch_bytes,
    layer_norm_f32: ex.layer_norm_f32,
    gelu_f32: ex.gelu_f32,
    attention_f32: ex.attention_f32,
    softmax_z_f32: ex.softmax_z_f32,
    topk_f32: ex.topk_f32,
    abi: 5, // bump when an exported signature or the scratch size changes; gpt2web.kernels checks it
  };
  pyodide.registerJsModule(KERNELS_JS_MODULE, api);
  return { functions: Object.keys(api).filter((k) => typeof api[k] === "function"),
           memoryBytes: memory.buffer.byteLength };
}
