// gpt2web worker: GPT-2 (the gpt2web NumPy engine under Pyodide) behind a small message
// protocol. Start it with  new Worker(new URL("worker.js", base), {type: "module"}).
// One worker serves every widget on a page: each model is loaded once and shared, and
// every request (id) is independent: its own generation, its own KV cache.
//
// Protocol (full text: protocol.md). Every message has `type` and `id` (request id,
// chosen by the page, unique per page).
//
// page -> worker
//   load     {id, model}                               load a model (weights/<model>/)
//   generate {id, model, prompt, temperature, top_k, top_p, seed, max_tokens, candidates}
//   step     {id, ...same as generate, forced_id?, at?, peek?}
//                                                      one token; the same id continues the
//                                                      same generation; forced_id = the
//                                                      token the user picked; at = first cut
//                                                      it back to its first `at` tokens;
//                                                      peek = append nothing, send the
//                                                      next token's candidates
//   stop     {id}                                      end a generation or a step session
//   next     {id, model, prompt, top}                  next-token table after the prompt
//   stats    {id}                                      memory and boot time (benchmarks)
//   explain  {id, model, prompt, ids, view, ...}       one view of one step (protocol.md)
//   score    {id, model, text}                         per-token probability and rank
// worker -> page
//   progress {id, phase, loaded, total, file, ...}     phase: runtime | tokenizer | shard | prepare
//   ready    {id, model, config, backend, ms, boot}    the model is loaded (answer to load);
//                                                      boot: "snapshot" | "plain" (+ boot_info)
//   token    {id, token_id, ...step, seed, upcoming?}  one generated token: the engine's step
//                                                      dict, its `id` renamed token_id (`id`
//                                                      is the request); step requests add
//                                                      `upcoming`: the next token's candidates
//   candidates {id, index, candidates, shown_mass}     answer to a step with peek
//   done     {id, reason, text, ids, seed, tokens, tokens_per_s, prefill_ms}
//                                                      reason: eot | max_tokens | context_full | stopped
//   next     {id, model, tokens}                       answer to next
//   stats    {id, wasm_bytes, runtime_ms, models}      answer to stats, once Python is up
//   explain  {id, view, tokens, ..., ms}               answer to explain
//   score    {id, tokens, perplexity, ms}              answer to score
//   error    {id, kind, message}                       kind: prompt | params | shard | runtime | memory

import { loadModel } from "./loader.js";
import { WorkerError } from "./download.js";
import { callPython, startRuntime } from "./runtime.js";

const BASE = new URL("./", import.meta.url);
const MAX_LIVE_GENERATIONS = 8;  // each holds a KV cache (75 MB for GPT-2 small)

const post = (type, id, fields = {}) => self.postMessage({ ...fields, type, id });

// ---------------------------------------------------------------- runtime and models

let runtime = null;  // Promise of {pyodide, bridge}
let python = null;   // the same, once resolved
let lastRuntimeProgress = null;
const models = new Map();  // name -> {promise, listeners: Set of request ids, info}

function startPython() {
  if (!runtime) {
    runtime = startRuntime(BASE, (loaded, total, file) => {
      lastRuntimeProgress = { phase: "runtime", loaded, total, file };
      for (const m of models.values()) {
        for (const id of m.listeners) post("progress", id, lastRuntimeProgress);
      }
    });
    // A failed boot stays failed: every request gets its message at once, and a page
    // reload tries again (booting twice in one worker would only double the memory).
    runtime.then((r) => { python = r; }, () => {});
  }
  return runtime;
}

/** The loaded model `name`, loading it on first use; request `id` gets the progress. */
function useModel(name, id) {
  let m = models.get(name);
  if (!m) {
    m = { listeners: new Set(), info: null };
    const progress = (fields) => { for (const l of m.listeners) post("progress", l, fields); };
    m.promise = loadModel({ name, base: BASE, runtime: startPython(), progress }).then(
      (info) => (m.info = info),
      (e) => { models.delete(name); throw e; },
    );
    models.set(name, m);
  }
  if (m.info) return m.promise;
  m.listeners.add(id);
  if (lastRuntimeProgress && lastRuntimeProgress.loaded < lastRuntimeProgress.total) {
    post("progress", id, lastRuntimeProgress);  // a late joiner still sees where the boot is
  }
  return m.promise.finally(() => m.listeners.delete(id));
}

// ---------------------------------------------------------------- requests

// Requests with a generation: id -> {mode: "generate"|"step", stopped, started, seed, n, t0, queue}
const requests = new Map();

function toError(e) {
  if (e instanceof WorkerError) return { kind: e.kind, message: e.message };
  console.error(e);
  return { kind: "runtime", message: `${e?.name ?? "Error"}: ${e?.message ?? e}` };
}

// Between two tokens, let queued messages (a `stop`, another widget's request) run.
// A MessageChannel round trip is a real task without setTimeout's 4 ms clamp.
const channel = new MessageChannel();
const resumers = [];
channel.port1.onmessage = () => resumers.shift()();
const yieldToEventLoop = () => new Promise((resolve) => {
  resumers.push(resolve);
  channel.port2.postMessage(null);
});

/** Create the engine's Generation for request `req` (unless it was stopped meanwhile). */
async function startGeneration(msg, req) {
  const { bridge } = await startPython();
  await useModel(msg.model, msg.id);
  if (req.stopped) return;
  // Step sessions stay alive between clicks; cap them so forgotten ones do not pile up.
  const sessions = [...requests].filter(([, r]) => r.started && r.mode === "step");
  if (sessions.length >= MAX_LIVE_GENERATIONS) finish(sessions[0][0], "evicted");
  const start = callPython(bridge, "generate_start", msg.id, msg.model, msg.prompt, msg.temperature,
    msg.top_k, msg.top_p, msg.seed ?? null, msg.max_tokens, msg.candidates ?? 10, msg.cache !== false);
  Object.assign(req, { started: true, seed: start.seed, t0: performance.now(), prompt_tokens: start.prompt_tokens });
}

/**
 * A step session (or a generate request sent with `keep`) that has ended: say `done`, but
 * keep its generation, so that a later `step` with `at` can rewrite it from an earlier
 * token. A `stop` or eviction frees it.
 */
function finishKept(id, reason) {
  const req = requests.get(id);
  if (!req) return;
  const info = callPython(python.bridge, "generate_info", id);
  const seconds = (performance.now() - req.t0) / 1000;
  post("done", id, {
    reason, text: info.text, ids: info.ids, seed: req.seed ?? null, tokens: req.n,
    tokens_per_s: req.n && seconds > 0 ? req.n / seconds : 0, prefill_ms: info.prefill_ms ?? null, kept: true,
  });
  Object.assign(req, { mode: "step", finished: true, stopped: false, queue: req.queue ?? Promise.resolve() });
}

/** End request `id` with a `done` message (once) and free its generation. */
function finish(id, reason) {
  const req = requests.get(id);
  if (!req) return;
  requests.delete(id);
  const end = (req.started && callPython(python.bridge, "generate_end", id)) || {};
  const seconds = req.started ? (performance.now() - req.t0) / 1000 : 0;
  post("done", id, {
    reason, text: end.text ?? "", ids: end.ids ?? [], seed: req.seed ?? null, tokens: req.n,
    tokens_per_s: req.n && seconds > 0 ? req.n / seconds : 0, prefill_ms: end.prefill_ms ?? null,
  });
}

/** End request `id` with an error message and free its generation. */
function fail(id, e) {
  const req = requests.get(id);
  requests.delete(id);
  if (req?.started) {
    try { callPython(python.bridge, "generate_end", id); } catch { /* already gone */ }
  }
  post("error", id, toError(e));
}

/** The engine's step dict as a token message: its `id` (the token's) becomes token_id. */
function tokenMessage(s, req) {
  const { id: token_id, ...rest } = s;
  return { ...rest, token_id, seed: req.seed, prompt_tokens: req.prompt_tokens };
}

async function generate(msg) {
  const { id } = msg;
  const req = { mode: "generate", stopped: false, started: false, n: 0 };
  requests.set(id, req);
  const end = msg.keep ? finishKept : finish;
  try {
    await startGeneration(msg, req);
    if (!req.started) return finish(id, "stopped");
    for (;;) {
      if (req.stopped) return end(id, "stopped");
      const s = callPython(python.bridge, "generate_step", id, null);
      req.n += 1;
      post("token", id, tokenMessage(s, req));
      if (s.done) return end(id, s.reason);
      await yieldToEventLoop();
    }
  } catch (e) {
    fail(id, e);
  }
}

function step(msg) {
  // The steps of one session run one after another, even if clicks arrive faster.
  let req = requests.get(msg.id);
  if (!req) {
    req = { mode: "step", stopped: false, started: false, n: 0, queue: Promise.resolve() };
    requests.set(msg.id, req);
  }
  req.queue = req.queue.then(() => runStep(msg, req));
}

async function runStep(msg, req) {
  const { id } = msg;
  if (requests.get(id) !== req) return;  // stopped or evicted meanwhile
  try {
    if (!req.started) await startGeneration(msg, req);
    if (req.stopped) return finish(id, "stopped");
    const { bridge } = python;
    if (msg.at != null) {  // rewrite from token `at`: the engine cuts its KV cache back
      callPython(bridge, "generate_truncate", id, msg.at);
      Object.assign(req, { n: msg.at, finished: false });
    }
    if (req.finished) {
      post("error", id, { kind: "params", message: "this generation is finished: rewrite it from an earlier token, or start a new one" });
      return;
    }
    if (msg.peek) {
      post("candidates", id, callPython(bridge, "peek", id));
      return;
    }
    const s = callPython(bridge, "generate_step", id, msg.forced_id ?? null);
    req.n += 1;
    const upcoming = s.done ? null : callPython(bridge, "peek", id);
    post("token", id, { ...tokenMessage(s, req), upcoming });
    if (s.done) finishKept(id, s.reason);
  } catch (e) {
    fail(id, e);
  }
}

function stop({ id }) {
  const req = requests.get(id);
  if (!req) return;
  req.stopped = true;
  // A generate loop notices at its next token; a step session has no loop, so end it
  // here (after any step still queued).
  if (req.mode === "step") req.queue = req.queue.then(() => finish(id, "stopped"));
}

async function load({ id, model }) {
  try {
    const t0 = performance.now();
    const info = await useModel(model, id);
    // boot: how Python started ("snapshot" | "plain"); boot_info: why not the snapshot, step times.
    const { bootInfo } = await startPython();
    post("ready", id, { model, config: info.config, backend: info.backend, ms: performance.now() - t0,
      boot: bootInfo.boot, boot_info: bootInfo, name: info.name,
      description: info.description ?? null, examples: info.examples ?? [] });
  } catch (e) {
    post("error", id, toError(e));
  }
}

async function next({ id, model, prompt, top }) {
  try {
    const { bridge } = await startPython();
    await useModel(model, id);
    post("next", id, { model, tokens: callPython(bridge, "next_tokens", model, prompt, top ?? 10) });
  } catch (e) {
    post("error", id, toError(e));
  }
}

// The WebAssembly memory only grows, so its size is also the peak since the worker started.
async function stats({ id }) {
  try {
    const { pyodide, ms } = await startPython();
    const heap = pyodide._module.HEAP8 ?? pyodide._module.HEAPU8;
    post("stats", id, { wasm_bytes: heap.buffer.byteLength, runtime_ms: ms ?? null, models: [...models.keys()] });
  } catch (e) {
    post("error", id, toError(e));
  }
}

// The views (protocol.md, "Inside a step"): computed only when the page asks, for one step.
async function explain(msg) {
  try {
    const { bridge } = await startPython();
    await useModel(msg.model, msg.id);
    const t0 = performance.now();
    const { type, id, model, ...request } = msg;
    const answer = callPython(bridge, "explain", model, JSON.stringify(request));
    post("explain", id, { ...answer, ms: performance.now() - t0 });
  } catch (e) {
    post("error", msg.id, toError(e));
  }
}

async function score({ id, model, text }) {
  try {
    const { bridge } = await startPython();
    await useModel(model, id);
    const t0 = performance.now();
    const answer = callPython(bridge, "score", model, text);
    post("score", id, { ...answer, ms: performance.now() - t0 });
  } catch (e) {
    post("error", id, toError(e));
  }
}

const handlers = { load, generate, step, stop, next, stats, explain, score };

self.onmessage = ({ data }) => {
  const handler = handlers[data?.type];
  if (!handler) {
    post("error", data?.id ?? null, { kind: "params", message: `unknown message type ${JSON.stringify(data?.type)}` });
    return;
  }
  handler(data);
};

// Boot at once: the page creates the worker when it wants a model, usually before the
// user has finished typing a prompt.
startPython().catch(() => {});  // errors reach each request through its own await
