// Benchmark driver for `gpt2web bench` (py/gpt2web/host/bench.py), loaded by bench.html.
//
// It talks to the real worker (worker.js) through the real protocol (protocol.md), like the
// page's client.js does, and timestamps every answer the moment it reaches the page: what a
// reader would see. Each function returns plain numbers for the host to aggregate.

const WORKER_URL = new URL("worker.js", import.meta.url);
const TIMEOUT_MS = 900_000;  // a hung worker fails the bench instead of stalling it forever

let worker = null;
let createdAt = 0;
let counter = 0;
const pending = new Map();  // request id -> function(message, arrival time)

/** Create the worker (it starts booting Python at once); returns the creation time. */
export function startWorker() {
  if (worker) throw new Error("the worker is already started");
  createdAt = performance.now();
  worker = new Worker(WORKER_URL, { type: "module" });
  worker.onmessage = ({ data }) => {
    const t = performance.now();
    pending.get(data.id)?.(data, t);
  };
  worker.onerror = (event) => {
    event.preventDefault?.();
    const message = `the worker failed to start (${event.message || "could not load worker.js"})`;
    for (const handler of [...pending.values()]) handler({ type: "error", kind: "runtime", message }, 0);
  };
  return createdAt;
}

/** Send one request; resolve with {message, t} at its final answer (`final` types). */
function request(message, final, onMessage) {
  const id = `bench${++counter}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`no answer to ${message.type} within ${TIMEOUT_MS / 1000} s`));
    }, TIMEOUT_MS);
    pending.set(id, (m, t) => {
      if (m.type === "error") {
        clearTimeout(timer);
        pending.delete(id);
        reject(new Error(`${message.type}: ${m.kind} error: ${m.message}`));
        return;
      }
      onMessage?.(m, t);
      if (final.includes(m.type)) {
        clearTimeout(timer);
        pending.delete(id);
        resolve({ message: m, t });
      }
    });
    worker.postMessage({ ...message, id });
  });
}

/** The worker's stats: WebAssembly memory (only grows: its size is the peak), boot time. */
export async function stats() {
  const { message } = await request({ type: "stats" }, ["stats"]);
  return { wasm_bytes: message.wasm_bytes, runtime_ms: message.runtime_ms };
}

/** Wait for Python: boot_ms from the worker's creation to its first answer. */
export async function boot() {
  const { message, t } = await request({ type: "stats" }, ["stats"]);
  return { boot_ms: t - createdAt, runtime_ms: message.runtime_ms, wasm_bytes: message.wasm_bytes };
}

/**
 * Load `model` (manifest, vocabulary, shards, into the engine) until `ready`.
 * download_ms: until the last byte of the last shard arrived (the worker hands shards to
 * Python as they come, so the two overlap; load_ms covers both).
 */
export async function load(model) {
  let downloadedAt = null;
  let shardBytes = 0;
  let tokenizerBytes = 0;
  let cached = false;
  const t0 = performance.now();
  const { message, t } = await request({ type: "load", model }, ["ready"], (m, at) => {
    if (m.type !== "progress") return;
    if (m.cached) cached = true;
    if (m.phase === "tokenizer" && m.total != null) tokenizerBytes = m.total;
    if (m.phase === "shard") {
      shardBytes = m.model_total;
      if (m.model_loaded === m.model_total) downloadedAt = at;
    }
  });
  return {
    load_ms: t - t0, download_ms: downloadedAt === null ? null : downloadedAt - t0,
    shard_bytes: shardBytes, tokenizer_bytes: tokenizerBytes, cached,
    backend: message.backend, config: message.config, worker_ms: message.ms,
    boot: message.boot ?? null,  // how Python started: "snapshot" or "plain"
  };
}

/**
 * One greedy generation; the arrival time of every token (ms after the request was sent).
 * Sampling settings are fixed: temperature 0 (greedy), the page's default 10 candidates.
 */
export async function generate({ model, prompt, max_tokens, candidates = 10 }) {
  const times = [];
  const stepMs = [];
  const ids = [];
  const t0 = performance.now();
  const { message } = await request({
    type: "generate", model, prompt, max_tokens, candidates,
    temperature: 0, top_k: 0, top_p: 1, seed: 0,
  }, ["done"], (m, t) => {
    if (m.type !== "token") return;
    times.push(t - t0);
    stepMs.push(m.ms);
    ids.push(m.token_id);
  });
  return { times, step_ms: stepMs, ids, reason: message.reason, prefill_ms: message.prefill_ms };
}
