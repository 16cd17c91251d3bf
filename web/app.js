// The page: prompt, settings, output chips and candidate bars. It only draws what the
// worker sends (protocol.md); all model work happens in the worker.

import { GPT2Client } from "./client.js";
import { attachViews } from "./views/page.js";
import { drawCandidates, drawChosenOutside, percent, setTokenText, tokenChip } from "./bars.js";
import { ERROR_TITLES, REASONS, readSettings } from "./settings.js";
import { LoadView } from "./progress.js";
import { drawAbout, drawExamples, modelCard } from "./about.js";

const $ = (id) => document.getElementById(id);
const ui = {
  prompt: $("prompt"), generate: $("generate"), stop: $("stop"), step: $("step"), model: $("model"),
  paramError: $("param-error"), promptText: document.querySelector("#text .prompt-text"),
  genText: document.querySelector("#text .gen-text"), tokens: $("tokens"), bars: $("bars"),
  other: $("other"), outside: $("chosen-outside"), candTitle: $("cand-title"), candNote: $("cand-note"), status: $("status"),
  error: $("error"), about: { about: $("about"), name: $("about-name"), desc: $("about-desc") },
  examples: $("examples"),
};

const client = GPT2Client.shared(new URL("worker.js", import.meta.url));
// Inside the step (web/views/): the views follow the selected step; closed, they cost nothing.
const views = attachViews({ client, container: document.getElementById("views") });
const viewsRunOptions = () => { run.cache = views.useCache; return run.cache ? {} : { cache: false }; };
const loadView = new LoadView($("load-list"), $("loading"));

// ---------------------------------------------------------------- status and errors

function setStatus(state, text) {
  delete ui.status.dataset.cause;
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

const modelState = new Map();  // name -> {state: "loading" | "ready", config, backend}
const modelCards = new Map();  // name -> {name, description, examples} (models.json)
let promptEdited = false;      // the reader typed a prompt: examples no longer replace it

/** Say what model `name` is where the output is, and offer its example prompts. */
function showModelCard(name) {
  const card = modelCards.get(name) ?? modelCard(null, name);
  drawAbout(ui.about, card);
  drawExamples(ui.examples, card.examples, (prompt) => {
    ui.prompt.value = prompt;
    promptEdited = false;
    ui.prompt.focus();
  });
  if (!promptEdited && card.examples.length) ui.prompt.value = card.examples[0];
}

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
  for (const m of models) modelCards.set(m.id, modelCard(m, m.id));
  ui.model.value = models.some((m) => m.id === "demo") ? "demo" : models[0].id;
  showModelCard(ui.model.value);
  loadModel(ui.model.value);
}

const BACKENDS = {
  "wasm-simd128-int8": "int8 WebAssembly SIMD",
  "numpy-int8": "int8 NumPy",
  "numpy-float32": "float32 NumPy",
};

function readyText(name, { config, backend }, ms) {
  return `Ready: ${name} (${config.n_layer} layers, ${config.n_embd} dimensions, ${config.n_ctx} tokens ` +
    `of context, ${BACKENDS[backend] ?? backend}).` + (ms != null ? ` Loaded in ${(ms / 1000).toFixed(1)} s.` : "");
}

/** The user picked model `name`: load it now, so that Generate can start at once. */
function loadModel(name) {
  if (!name) return;
  const known = modelState.get(name);
  if (known?.state === "loading") return;
  clearError();
  if (known?.state === "ready") {
    if (!run || run.done) setStatus("ready", readyText(name, known));
    return;
  }
  modelState.set(name, { state: "loading" });
  loadView.start(name);
  setStatus("loading", `Loading ${name}…`);
  client.send({ type: "load", model: name }, (m) => {
    if (m.type === "progress") {
      onProgress(m, name);
    } else if (m.type === "ready") {
      modelState.set(name, { state: "ready", config: m.config, backend: m.backend });
      loadView.finish(name, m.ms);
      if (ui.model.value === name && (!run || run.done)) setStatus("ready", readyText(name, m, m.ms));
    } else if (m.type === "error") {
      modelState.delete(name);  // choosing it again tries again
      loadView.fail(name);
      if (ui.model.value === name) {
        setStatus("error", `Could not load ${name}.`);
        showError(m);
      }
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
  drawChosenOutside(ui.outside, null);
  ui.candTitle.textContent = "Candidates";
  ui.candNote.textContent = "Waiting for the first token…";
  return run;
}

function params({ quiet = false } = {}) {
  const result = readSettings();
  ui.paramError.hidden = !result.error;
  ui.paramError.textContent = result.error ?? "";
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (result.error) {
    const field = $(result.field);
    field.setAttribute("aria-invalid", "true");
    if (!quiet) {
      field.focus();
      clearOutput();
      setStatus("error", "Nothing ran: fix the problem shown under the settings.");
      ui.status.dataset.cause = "params";
    }
    return null;
  }
  if (ui.status.dataset.cause === "params") {  // fixed: say again what is ready
    const ready = modelState.get(result.params.model);
    if (ready?.state === "ready") setStatus("ready", readyText(result.params.model, ready));
  }
  return result.params;
}

/** Nothing on screen from an earlier run: it would be read as the answer to this one. */
function clearOutput(note = "Generate or Step to see the candidates for each next token.") {
  if (run && !run.done) client.stop(run.id);
  run = null;
  pinned = null;
  clearError();
  ui.promptText.textContent = "";
  ui.genText.textContent = "";
  ui.tokens.replaceChildren();
  ui.tokens.dataset.reason = "";
  clearBars(note);
  updateButtons();
}

function clearBars(note) {
  ui.bars.replaceChildren();
  ui.other.textContent = "";
  drawChosenOutside(ui.outside, null);
  ui.candTitle.textContent = "Candidates";
  ui.candNote.textContent = note;
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
        (m.reason === "stopped" ? "" : ` (${REASONS[m.reason] ?? m.reason})`) +
        (m.seed != null ? `. Seed ${m.seed}.` : "."));
      r.upcoming = null;
      showCurrent();
      updateButtons();
      break;
    case "error":
      r.done = true;
      r.upcoming = null;
      showError(m);
      if (m.kind === "prompt") ui.prompt.setAttribute("aria-invalid", "true");
      setStatus("error", m.kind === "prompt" ? "Nothing ran: the prompt needs a change (see above)." : "Generation failed.");
      if (!r.steps.length) clearBars("No candidates: see the message above.");
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
  client.send({ type: "generate", id: r.id, ...viewsRunOptions(), ...p }, (m) => onMessage(r, m));
  setStatus("generating", modelState.get(p.model)?.state === "ready" ? "Generating…" : `Loading ${p.model}…`);
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
  queueMicrotask(() => views.update(run, pinned, modelState.get(run?.params.model)?.config ?? null));
  const r = run;
  for (const chip of ui.tokens.querySelectorAll(".chip")) {
    chip.setAttribute("aria-pressed", String(Number(chip.dataset.index) === pinned));
  }
  if (!r) return;
  if (pinned === null && r.upcoming && !r.done) {
    ui.candTitle.textContent = `Token ${r.upcoming.index + 1}: your pick`;
    ui.candNote.textContent = "Click a candidate to append it, or press Step to let the sampler choose.";
    drawCandidates(ui.bars, ui.other, r.upcoming, (id) => { if (!r.pending) step(id); });
    drawChosenOutside(ui.outside, null);
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
  drawChosenOutside(ui.outside, s);
}

// ---------------------------------------------------------------- wiring

ui.generate.addEventListener("click", generate);
ui.step.addEventListener("click", () => step());
ui.stop.addEventListener("click", stop);
ui.model.addEventListener("change", () => {
  showModelCard(ui.model.value);
  loadModel(ui.model.value);
});
ui.prompt.addEventListener("input", () => { promptEdited = true; });
// Once a problem is shown, re-check as the user types, so the message goes when it is fixed.
document.querySelector(".compose").addEventListener("input", () => {
  if (!ui.paramError.hidden) params({ quiet: true });
});
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
