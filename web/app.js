// The page: prompt, settings, output chips and candidate bars. It only draws what the
// worker sends (protocol.md); all model work happens in the worker.

import { GPT2Client } from "./client.js";
import { drawCandidates, percent, setTokenText, tokenChip } from "./bars.js";
import { readSettings } from "./settings.js";
import { LoadView } from "./progress.js";

const $ = (id) => document.getElementById(id);
const ui = {
  prompt: $("prompt"), generate: $("generate"), stop: $("stop"), step: $("step"), model: $("model"),
  paramError: $("param-error"), promptText: document.querySelector("#text .prompt-text"),
  genText: document.querySelector("#text .gen-text"), tokens: $("tokens"), bars: $("bars"),
  other: $("other"), candTitle: $("cand-title"), candNote: $("cand-note"), status: $("status"),
  error: $("error"),
};

const REASONS = {
  eot: "the model wrote <|endoftext|>",
  max_tokens: "max tokens reached",
  context_full: "the context window is full",
  stopped: "stopped",
  evicted: "too many step sessions were open",
};

const ERROR_TITLES = {
  prompt: "Prompt problem",
  params: "Setting problem",
  shard: "Model file problem",
  runtime: "The Python runtime failed",
  memory: "Out of memory",
};

const client = GPT2Client.shared(new URL("worker.js", import.meta.url));
const loadView = new LoadView($("load-list"), $("loading"));

// ---------------------------------------------------------------- status and errors

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showError({ kind, message }) {
  ui.error.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = `${ERROR_TITLES[kind] ?? "Error"}: `;
  ui.error.append(title, message);
  ui.error.dataset.kind = kind;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
  delete ui.error.dataset.kind;
}

// ---------------------------------------------------------------- models

const modelState = new Map();  // name -> "loading" | "ready" | "error"

async function listModels() {
  let models;
  try {
    const resp = await fetch(new URL("models.json", import.meta.url), { cache: "no-cache" });
    if (!resp.ok) throw new Error(`the server answered ${resp.status} ${resp.statusText}`);
    models = (await resp.json()).models ?? [];
  } catch (e) {
    ui.model.replaceChildren(new Option("no model list", ""));
    showError({ kind: "runtime", message: `could not list the models (models.json): ${e.message}` });
    setStatus("error", "No model list.");
    return;
  }
  if (!models.length) {
    ui.model.replaceChildren(new Option("no models", ""));
    showError({ kind: "shard", message: "this server has no models: convert one into weights/ (gpt2web convert)" });
    setStatus("error", "No models.");
    return;
  }
  ui.model.replaceChildren(...models.map((m) => {
    const size = m.size ? `, ${(m.size / 1e6).toFixed(m.size < 1e7 ? 1 : 0)} MB` : "";
    const shape = m.n_layer ? `, ${m.n_layer} layers × ${m.n_embd}` : "";
    return new Option(`${m.name ?? m.id} (${m.dtype ?? "?"}${shape}${size})`, m.id);
  }));
  ui.model.value = models.some((m) => m.id === "demo") ? "demo" : models[0].id;
  loadModel(ui.model.value);
}

function loadModel(name) {
  if (!name || modelState.get(name) === "ready" || modelState.get(name) === "loading") return;
  modelState.set(name, "loading");
  loadView.start(name);
  setStatus("loading", `Loading ${name}…`);
  client.send({ type: "load", model: name }, (m) => {
    if (m.type === "progress") {
      onProgress(m, name);
    } else if (m.type === "ready") {
      modelState.set(name, "ready");
      loadView.finish(name, m.ms);
      if (!run || run.done) {
        const c = m.config;
        setStatus("ready", `Ready: ${name} (${c.n_layer} layers, ${c.n_embd} dimensions, ${c.n_ctx} tokens ` +
          `of context). Loaded in ${(m.ms / 1000).toFixed(1)} s.`);
      }
    } else if (m.type === "error") {
      modelState.set(name, "error");
      modelState.delete(name);  // allow another try
      loadView.fail(name);
      setStatus("error", `Could not load ${name}.`);
      showError(m);
    }
  });
}

function onProgress(m, name) {
  loadView.update(m);
  if (ui.model.value === name && (!run || run.done || run.n === 0)) setStatus("loading", loadView.summary(m, name));
}

// ---------------------------------------------------------------- runs

let run = null;       // {id, mode, params, key, steps, done, n, t0, upcoming, pending}
let pinned = null;    // index of the token whose candidates are shown, null: the latest

function newRun(mode, params) {
  if (run && !run.done) client.stop(run.id);
  clearError();
  run = {
    id: client.newId(mode === "step" ? "s" : "g"), mode, params, key: JSON.stringify(params),
    steps: [], done: false, n: 0, t0: 0, tLast: 0, upcoming: null, pending: false,
  };
  pinned = null;
  ui.promptText.textContent = params.prompt;
  ui.genText.textContent = "";
  ui.tokens.replaceChildren();
  ui.tokens.dataset.reason = "";
  ui.bars.replaceChildren();
  ui.other.textContent = "";
  ui.candTitle.textContent = "Candidates";
  ui.candNote.textContent = "Waiting for the first token…";
  return run;
}

function params() {
  const result = readSettings();
  ui.paramError.hidden = !result.error;
  ui.paramError.textContent = result.error ?? "";
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (result.error) {
    const field = $(result.field);
    field.setAttribute("aria-invalid", "true");
    field.focus();
    return null;
  }
  return result.params;
}

function onMessage(r, m) {
  if (r !== run) return;  // an old run's late messages
  switch (m.type) {
    case "progress":
      onProgress(m, r.params.model);
      break;
    case "token":
      onToken(r, m);
      break;
    case "done":
      r.done = true;
      r.reason = m.reason;
      ui.tokens.dataset.reason = m.reason;
      if (m.text !== ui.genText.textContent) ui.genText.textContent = m.text;
      setStatus(m.reason === "stopped" ? "stopped" : "done",
        `${m.reason === "stopped" ? "Stopped" : "Done"}: ${m.tokens} token${m.tokens === 1 ? "" : "s"}` +
        (m.tokens && r.mode === "generate" ? ` at ${m.tokens_per_s.toFixed(1)} tokens/s` : "") +
        ` (${REASONS[m.reason] ?? m.reason}). Seed ${m.seed ?? "–"}.`);
      r.upcoming = null;
      showCurrent();
      updateButtons();
      break;
    case "error":
      r.done = true;
      showError(m);
      setStatus("error", "Generation failed.");
      updateButtons();
      break;
  }
}

function onToken(r, m) {
  const now = performance.now();
  if (r.n === 0) r.t0 = now;
  r.n += 1;
  r.tLast = now;
  r.pending = false;
  r.steps.push(m);
  r.upcoming = m.upcoming ?? null;
  ui.tokens.append(tokenChip(m, selectToken));
  ui.genText.textContent += m.text;
  // Speed means something only when the engine runs freely (not at the pace of clicks).
  const rate = r.mode === "generate" && r.n > 1 ? ((r.n - 1) * 1000) / (now - r.t0) : null;
  setStatus("generating", `${r.mode === "step" ? "Stepping" : "Generating"}: ${r.n} token${r.n === 1 ? "" : "s"}` +
    (rate ? `, ${rate.toFixed(1)} tokens/s` : "") + ` · seed ${m.seed}`);
  showCurrent();
  updateButtons();
}

function generate() {
  const p = params();
  if (!p) return;
  const r = newRun("generate", p);
  client.send({ type: "generate", id: r.id, ...p }, (m) => onMessage(r, m));
  setStatus("generating", modelState.get(p.model) === "ready" ? "Generating…" : `Loading ${p.model}…`);
  updateButtons();
}

function step(forcedId = null) {
  const p = params();
  if (!p) return;
  // Same prompt and settings: continue the session; anything changed: start a new one.
  if (!run || run.mode !== "step" || run.done || run.key !== JSON.stringify(p)) {
    if (forcedId !== null) return;  // a pick from a finished session
    newRun("step", p);
  }
  const r = run;
  r.pending = true;
  const message = { type: "step", id: r.id, ...p };
  if (forcedId !== null) message.forced_id = forcedId;
  client.send(message, (m) => onMessage(r, m));
  updateButtons();
}

function stop() {
  if (run && !run.done) client.stop(run.id);
}

function updateButtons() {
  const generating = run && !run.done && run.mode === "generate";
  const stepping = run && !run.done && run.mode === "step";
  ui.generate.disabled = Boolean(generating);
  ui.step.disabled = Boolean(generating);
  ui.stop.disabled = !(generating || stepping);
}

// ---------------------------------------------------------------- the candidates panel

function selectToken(index) {
  pinned = pinned === index ? null : index;
  showCurrent();
}

/** Show the pinned token's candidates, else the upcoming choice (Step), else the latest. */
function showCurrent() {
  const r = run;
  for (const chip of ui.tokens.querySelectorAll(".chip")) {
    chip.setAttribute("aria-pressed", String(Number(chip.dataset.index) === pinned));
  }
  if (!r) return;
  if (pinned === null && r.upcoming && !r.done) {
    ui.candTitle.textContent = `Token ${r.upcoming.index + 1}: your pick`;
    ui.candNote.textContent = "Click a candidate to append it, or press Step to let the sampler choose.";
    drawCandidates(ui.bars, ui.other, r.upcoming, (id) => { if (!r.pending) step(id); });
    return;
  }
  const s = r.steps[pinned ?? r.steps.length - 1];
  if (!s) return;
  ui.candTitle.replaceChildren(`Token ${s.index + 1}: `);
  const tok = document.createElement("code");
  tok.className = "tok";
  setTokenText(tok, s.token);
  ui.candTitle.append(tok);
  ui.candNote.replaceChildren(
    `Chosen with ${percent(s.prob)} under the model (rank ${s.rank}), ${percent(s.sample_prob)} after the settings.`);
  if (pinned !== null) {
    const back = document.createElement("button");
    back.type = "button";
    back.className = "link";
    back.textContent = "show the latest";
    back.addEventListener("click", () => selectToken(pinned));
    ui.candNote.append(" ", back);
  }
  drawCandidates(ui.bars, ui.other, s);
}

// ---------------------------------------------------------------- wiring

ui.generate.addEventListener("click", generate);
ui.step.addEventListener("click", () => step());
ui.stop.addEventListener("click", stop);
ui.model.addEventListener("change", () => loadModel(ui.model.value));
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    if (!ui.generate.disabled) generate();
  } else if (e.key === "Escape" && run && !run.done) {
    stop();
  }
});

updateButtons();
setStatus("loading", "Starting Python in the background…");
listModels();
