// Reads and checks the prompt and settings before anything is sent to the worker.
// The limits mirror the engine's (sampling.py, engine.py) so that mistakes show at once;
// the engine checks again and its messages are shown as they are.

export const MAX_NEW_TOKENS = 1024;
const MAX_SEED = (1n << 63n) - 1n;
export const CANDIDATES = 10;  // bars per step

/** Why a generation ended, in words (the `reason` of a `done` message). */
export const REASONS = {
  eot: "the model wrote <|endoftext|>",
  max_tokens: "max tokens reached",
  context_full: "the context window is full",
  evicted: "too many step sessions were open",
};

/** A heading for each `error` kind of the protocol. */
export const ERROR_TITLES = {
  prompt: "Prompt problem",
  params: "Setting problem",
  shard: "Model file problem",
  runtime: "The Python runtime failed",
  memory: "Out of memory",
};

/**
 * Check a prompt and settings; `text(key)` gives the raw text of the field `key`
 * (temperature, top_k, top_p, seed, max_tokens). Returns {params} ready for a generate/step
 * message, or {error, field} for the first problem. Used by the page and by the widget.
 */
export function checkSettings(text, { model, prompt, candidates = CANDIDATES }) {
  if (!model) return { error: "No model is selected (the server lists none).", field: "model" };
  if (prompt === "") return { error: "The prompt is empty: type some text to continue.", field: "prompt" };

  const number = (key, name) => {
    const raw = text(key).trim();
    const x = Number(raw);
    return raw === "" || !Number.isFinite(x) ? { error: `${name} must be a number.`, field: key } : { x };
  };

  const t = number("temperature", "Temperature");
  if (t.error) return t;
  if (t.x < 0 || t.x > 10) return { error: "Temperature must be between 0 and 10 (0 = greedy).", field: "temperature" };

  const k = number("top_k", "Top-k");
  if (k.error) return k;
  if (!Number.isInteger(k.x) || k.x < 0) return { error: "Top-k must be a whole number ≥ 0 (0 = no limit).", field: "top_k" };

  const p = number("top_p", "Top-p");
  if (p.error) return p;
  if (!(p.x > 0 && p.x <= 1)) return { error: "Top-p must be more than 0 and at most 1 (1 = no limit).", field: "top_p" };

  // Seeds go up to 2^63 - 1, past what a JavaScript number holds exactly: big ones travel as digits.
  const seedText = text("seed").trim();
  let seed = null;
  if (seedText !== "") {
    if (!/^\d+$/.test(seedText) || BigInt(seedText) > MAX_SEED) {
      return { error: "Seed must be a whole number from 0 to 2^63−1, or empty for a random one.", field: "seed" };
    }
    seed = BigInt(seedText) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seedText) : seedText;
  }

  const m = number("max_tokens", "Max tokens");
  if (m.error) return m;
  if (!Number.isInteger(m.x) || m.x < 1 || m.x > MAX_NEW_TOKENS) {
    return { error: `Max tokens must be a whole number from 1 to ${MAX_NEW_TOKENS}.`, field: "max_tokens" };
  }
  return { params: { model, prompt, temperature: t.x, top_k: k.x, top_p: p.x, seed, max_tokens: m.x, candidates } };
}

/** The main page's settings (fields by element id). */
export function readSettings() {
  const text = (id) => document.getElementById(id).value;
  return checkSettings(text, { model: text("model").trim(), prompt: text("prompt") });
}
