// Reads and checks the prompt and settings before anything is sent to the worker.
// The limits mirror the engine's (sampling.py, engine.py) so that mistakes show at once;
// the engine checks again and its messages are shown as they are.

import { t as translate } from "./i18n.js";

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
export function checkSettings(text, { model, prompt, candidates = CANDIDATES, lang = undefined }) {
  const t = (key, vars) => translate(key, vars, lang);  // the messages in the page's (or widget's) language
  if (!model) return { error: t("check.model"), field: "model" };
  if (prompt === "") return { error: t("check.prompt"), field: "prompt" };

  const number = (key, name) => {
    const raw = text(key).trim();
    const x = Number(raw);
    return raw === "" || !Number.isFinite(x) ? { error: t("check.number", { name: t(name) }), field: key } : { x };
  };

  const temp = number("temperature", "settings.temperature");
  if (temp.error) return temp;
  if (temp.x < 0 || temp.x > 10) return { error: t("check.temperature"), field: "temperature" };

  const k = number("top_k", "settings.topK");
  if (k.error) return k;
  if (!Number.isInteger(k.x) || k.x < 0) return { error: t("check.topK"), field: "top_k" };

  const p = number("top_p", "settings.topP");
  if (p.error) return p;
  if (!(p.x > 0 && p.x <= 1)) return { error: t("check.topP"), field: "top_p" };

  // Seeds go up to 2^63 - 1, past what a JavaScript number holds exactly: big ones travel as digits.
  const seedText = text("seed").trim();
  let seed = null;
  if (seedText !== "") {
    if (!/^\d+$/.test(seedText) || BigInt(seedText) > MAX_SEED) {
      return { error: t("check.seed"), field: "seed" };
    }
    seed = BigInt(seedText) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seedText) : seedText;
  }

  const m = number("max_tokens", "settings.maxTokens");
  if (m.error) return m;
  if (!Number.isInteger(m.x) || m.x < 1 || m.x > MAX_NEW_TOKENS) {
    return { error: t("check.maxTokens", { max: MAX_NEW_TOKENS }), field: "max_tokens" };
  }
  return { params: { model, prompt, temperature: temp.x, top_k: k.x, top_p: p.x, seed, max_tokens: m.x, candidates } };
}

/** The main page's settings (fields by element id). */
export function readSettings() {
  const text = (id) => document.getElementById(id).value;
  return checkSettings(text, { model: text("model").trim(), prompt: text("prompt") });
}
