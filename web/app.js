// The page: prompt, settings, output chips and candidate bars. It only draws what the
// worker sends (protocol.md); all model work happens in the worker.

import { GPT2Client } from "./client.js";
import { attachViews } from "./views/page.js";
import { drawCandidates, drawChosenOutside, percent, setTokenText, tokenChip } from "./bars.js";
import { readSettings } from "./settings.js";
import { LoadView } from "./progress.js";
import { drawAbout, drawExamples, modelCard } from "./about.js";
import { BranchTree } from "./tree.js";
import { drawCompare, drawTree } from "./branches.js";
import { decodeLink, encodeLink } from "./link.js";
import { applyStatic, getLanguage, setLanguage, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ui = {
  prompt: $("prompt"), generate: $("generate"), stop: $("stop"), step: $("step"), model: $("model"),
  paramError: $("param-error"), promptText: document.querySelector("#text .prompt-text"),
  genText: document.querySelector("#text .gen-text"), tokens: $("tokens"), bars: $("bars"),
  other: $("other"), outside: $("chosen-outside"), candTitle: $("cand-title"), candNote: $("cand-note"), status: $("status"),
  error: $("error"), about: { about: $("about"), name: $("about-name"), desc: $("about-desc") },
  examples: $("examples"), branchBox: $("branch-box"), branches: $("branches"), compare: $("compare"),
  linkBox: $("link-box"), link: $("link"), copyLink: $("copy-link"), linkNote: $("link-note"),
  candPanel: document.querySelector(".candidates"), lang: $("lang"),
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
  title.textContent = `${errorTitle(kind)}: `;
  ui.error.append(title, message);
  ui.error.dataset.kind = kind;
  ui.error.hidden = false;
}

/** The heading of an error kind (protocol.md), in the page's language. */
function errorTitle(kind) {
  const title = t(`error.${kind}`);
  return title === `error.${kind}` ? t("error.other") : title;
}

/** Why a generation ended, in words. */
function reasonText(reason) {
  const text = t(`reason.${reason}`);
  return text === `reason.${reason}` ? reason : text;
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
    ui.model.replaceChildren(new Option(t("models.noList"), ""));
    showError({ kind: "runtime", message: t("models.listFailed", { message: e.message }) });
    setStatus("error", t("status.noList"));
    return;
  }
  if (!models.length) {
    ui.model.replaceChildren(new Option(t("models.none"), ""));
    showError({ kind: "shard", message: t("models.empty") });
    setStatus("error", t("status.noModels"));
    return;
  }
  ui.model.replaceChildren(...models.map((m) => {
    const size = m.size ? `, ${(m.size / 1e6).toFixed(m.size < 1e7 ? 1 : 0)} MB` : "";
    const shape = m.n_layer ? `, ${m.n_layer} layers × ${m.n_embd}` : "";
    const option = new Option(`${m.name ?? m.id} (${m.dtype ?? "?"}${size})`, m.id);
    option.title = `${m.name ?? m.id} (${m.dtype ?? "?"}${shape}${size})`;  // the short text fits a phone
    return option;
  }));
  for (const m of models) modelCards.set(m.id, modelCard(m, m.id));
  modelIds = models.map((m) => m.id);
  ui.model.value = models.some((m) => m.id === "demo") ? "demo" : models[0].id;
  const linked = readLink();  // a shared link: its model, prompt and settings
  showModelCard(ui.model.value);
  loadModel(ui.model.value);
  openLink(linked);
}

/** Replay a link read by readLink, or say what is wrong with it (after the model's load
 * has cleared older messages). */
function openLink(linked) {
  if (linked?.error) showError({ kind: "link", message: linked.error });
  else if (linked) replayLink(linked);
}

let modelIds = [];

const BACKENDS = {
  "wasm-simd128-int8": "int8 WebAssembly SIMD",
  "numpy-int8": "int8 NumPy",
  "numpy-float32": "float32 NumPy",
};

function readyText(name, { config, backend }, ms) {
  return t("status.ready", { name, layers: config.n_layer, dims: config.n_embd, ctx: config.n_ctx,
    backend: BACKENDS[backend] ?? backend }) + (ms != null ? t("status.loadedIn", { s: (ms / 1000).toFixed(1) }) : "");
}

/** The user picked model `name`: load it now, so that Generate can start at once. */
function loadModel(name) {
  if (!name) return;
  const known = modelState.get(name);
  if (known?.state === "loading") return;
  clearError();
  if (known?.state === "ready") {
    if (!busy()) setStatus("ready", readyText(name, known));
    return;
  }
  modelState.set(name, { state: "loading" });
  loadView.start(name);
  setStatus("loading", t("status.loading", { model: name }));
  client.send({ type: "load", model: name }, (m) => {
    if (m.type === "progress") {
      onProgress(m, name);
    } else if (m.type === "ready") {
      modelState.set(name, { state: "ready", config: m.config, backend: m.backend });
      loadView.finish(name, m.ms);
      if (ui.model.value === name && !busy()) setStatus("ready", readyText(name, m, m.ms));
    } else if (m.type === "error") {
      modelState.delete(name);  // choosing it again tries again
      loadView.fail(name);
      if (ui.model.value === name) {
        setStatus("error", t("status.couldNotLoad", { model: name }));
        showError(m);
      }
    }
  });
}

function onProgress(m, name) {
  loadView.update(m);
  if (ui.model.value === name && (!run || run.ended || run.n === 0)) setStatus("loading", loadView.summary(m, name));
}

// ---------------------------------------------------------------- runs

// A run: one prompt with its settings, written by Generate or token by token with Step. Its
// branches are kept in a tree (tree.js). Once the requests sent have been answered, the
// worker's generation (same id) holds the current branch, so a rewrite only cuts its KV
// cache back. Every request's answers come in the order sent: `intents` says, for each
// `token` or `candidates` answer to come, which branch it belongs to.
let run = null;        // {id, mode, params, key, tree, streaming, ended, intents, n, t0, seed}
let pinned = null;     // index of the token whose candidates are shown, null: the latest
let rewriting = false; // the shown token's candidates can be picked to rewrite from there
let comparing = null;  // the branch shown side by side with the current one
let focusBars = false; // a keyboard pick: focus the next list's first candidate

/** Whether the worker is busy with the run (writing, or answering a step). */
function busy() {
  return Boolean(run && !run.ended && (run.streaming || run.intents.length > 0));
}

function newRun(mode, params, fromLink = false) {
  if (run && !run.ended) client.stop(run.id);  // frees its generation in the worker
  clearError();
  run = {
    id: client.newId(mode === "step" ? "s" : "g"), mode, params, key: JSON.stringify(params),
    tree: new BranchTree(), streaming: mode === "generate", ended: false, intents: [], n: 0, t0: 0,
    seed: null, fromLink,
  };
  pinned = null;
  rewriting = false;
  comparing = null;
  ui.promptText.textContent = params.prompt;
  drawBranch();
  clearBars(t("cand.waiting"));
  drawBranches();
  return run;
}

/** Send a step-session request for run `r`; `intent`: the branch its answer belongs to. */
function send(r, fields, intent = null) {
  if (intent) r.intents.push(intent);
  client.send({ type: "step", ...r.params, ...fields, id: r.id }, (m) => onMessage(r, m));
  updateButtons();
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
      setStatus("error", t("status.nothingRan"));
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
function clearOutput(note = t("cand.start")) {
  if (run && !run.ended) client.stop(run.id);
  run = null;
  pinned = null;
  rewriting = false;
  comparing = null;
  clearError();
  ui.promptText.textContent = "";
  drawBranch();
  drawBranches();
  clearBars(note);
  updateButtons();
  clearLink();
}

function clearBars(note) {
  ui.bars.replaceChildren();
  ui.other.textContent = "";
  drawChosenOutside(ui.outside, null);
  ui.candTitle.textContent = t("cand.title");
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
    case "candidates": {
      const it = r.intents.shift();
      const b = it?.branch ?? r.tree.current;
      b.upcoming = m;
      if (r.n === 0 && b.steps.length === 0) setStatus("generating", t("status.firstPick", { seed: "" }));
      afterAnswer(r);
      break;
    }
    case "done":
      onDone(r, m);
      break;
    case "error":
      r.ended = true;
      r.streaming = false;
      r.intents = [];
      r.tree.current.upcoming = null;
      showError(r.fromLink ? { kind: "link", message: t("link.failed", { message: m.message }) } : m);
      if (m.kind === "prompt") ui.prompt.setAttribute("aria-invalid", "true");
      setStatus("error", m.kind === "prompt" ? t("status.promptProblem") : t("status.failed"));
      if (!r.tree.current.steps.length) clearBars(t("cand.none"));
      if (r.fromLink) clearLink();
      updateButtons();
      drawBranches();
      break;
  }
}

function onToken(r, m) {
  const now = performance.now();
  r.seed = m.seed;
  const it = r.streaming ? { kind: "append", branch: r.tree.current } : r.intents.shift();
  const b = it?.branch ?? r.tree.current;
  r.lastBranch = b;
  // A sync replays tokens the branch has already: only its last answer's candidates count.
  if (it?.kind !== "sync" || !r.intents.some((i) => i.branch === b)) b.upcoming = m.upcoming ?? null;
  if (it?.kind !== "sync") {
    if (r.n === 0) r.t0 = now;
    r.n += 1;
    b.steps.length = m.index;
    b.steps.push(m);
    b.text = null;
    if (b === r.tree.current) {
      ui.tokens.append(tokenChip(m, selectToken));
      ui.genText.textContent = branchText(b);
    }
  }
  // Speed means something only when the engine runs freely (not at the pace of clicks).
  const rate = r.streaming && r.n > 1 ? ((r.n - 1) * 1000) / (now - r.t0) : null;
  setStatus("generating", t(r.streaming ? "status.generating" : "status.stepping", { n: b.steps.length }) +
    (rate ? t("status.rate", { rate: rate.toFixed(1) }) : "") + t("status.seed", { seed: m.seed }));
  if (r.streaming) {
    showCurrent();
    updateButtons();
  } else {
    afterAnswer(r);
  }
}

function onDone(r, m) {
  const b = r.lastBranch ?? r.tree.current;  // the branch whose last token ended the generation
  r.streaming = false;
  const stopped = m.reason === "stopped" || m.reason === "evicted";
  if (stopped && !m.kept) {
    r.ended = true;
    r.intents = [];
  } else if (!stopped) {
    Object.assign(b, { done: true, reason: m.reason, text: m.text, upcoming: null });
  }
  if (b === r.tree.current) {
    ui.tokens.dataset.reason = m.reason;
    ui.genText.textContent = branchText(b);
  }
  const n = b.steps.length;
  setStatus(stopped ? "stopped" : "done",
    t(stopped ? "status.stopped" : "status.done", { n }) +
    (n && r.mode === "generate" && m.tokens_per_s ? t("status.rate", { rate: m.tokens_per_s.toFixed(1) }) : "") +
    (stopped ? "" : ` (${reasonText(m.reason)})`) +
    (m.seed != null ? t("status.seedEnd", { seed: m.seed }) : "."));
  afterAnswer(r);
}

/** After each answer: redraw what depends on it; keep the link up to date when idle. */
function afterAnswer(r) {
  showCurrent();
  updateButtons();
  drawBranches();
  if (busy()) return;
  saveLink(r);
  if (r.fromLink && !r.rebuilt && !r.ended) {  // a link's text is back: say so, once
    r.rebuilt = true;
    setStatus("done", t("status.rebuilt", { n: r.tree.current.steps.length }));
  }
}

function branchText(b) {
  return b.text ?? b.steps.map((s) => s.text).join("");
}

function generate() {
  const p = params();
  if (!p) return;
  const r = newRun("generate", p);
  client.send({ type: "generate", id: r.id, ...viewsRunOptions(), ...p, keep: true }, (m) => onMessage(r, m));
  setStatus("generating", modelState.get(p.model)?.state === "ready" ? t("status.generating0") : t("status.loading", { model: p.model }));
  updateButtons();
  revealCandidates();
}

/** Whether Step may go on with run `r` (same prompt and settings, the worker still has it). */
function canContinue(r, p) {
  return Boolean(r && !r.ended && !r.streaming && r.key === JSON.stringify(p) && !r.tree.current.done);
}

/** Step: first show the next token's candidates; pressed again, let the sampler pick. */
function step() {
  const p = params();
  if (!p) return;
  if (canContinue(run, p)) {
    const b = run.tree.current;
    const peekPending = run.intents.some((i) => i.kind === "peek");
    if (b.upcoming || peekPending) send(run, {}, { kind: "append", branch: b });
    else send(run, { peek: true }, { kind: "peek", branch: b });
  } else {
    const r = newRun("step", p);
    send(r, { peek: true }, { kind: "peek", branch: r.tree.current });
    setStatus("generating", modelState.get(p.model)?.state === "ready" ? t("status.stepping0") : t("status.loading", { model: p.model }));
  }
  revealCandidates();
}

/** The reader picked candidate `id` for the token to come. */
function pick(id) {
  const r = run;
  if (!r || r.ended || r.streaming || r.intents.length) return;
  send(r, { forced_id: id }, { kind: "append", branch: r.tree.current });
}

/** Rewrite from token `index`: candidate `id` there, the text so far kept as a branch. */
function rewrite(index, id) {
  const r = run;
  if (!r || r.ended || r.streaming || r.intents.length) return;
  rewriting = false;
  if (r.tree.current.steps[index]?.token_id === id) {  // the same token: nothing changes
    showCurrent();
    return;
  }
  const b = r.tree.fork(index);
  pinned = null;
  drawBranch();
  send(r, { at: index, forced_id: id }, { kind: "append", branch: b });
  drawBranches();
  setStatus("generating", t("status.rewriting", { n: index + 1 }));
}

/** Show branch `b`: the worker replays its tokens after the part it shares with the current one. */
function switchTo(b) {
  const r = run;
  if (!r || r.ended || r.streaming || r.intents.length || b === r.tree.current) return;
  const old = r.tree.current;
  const shared = BranchTree.shared(old, b);
  const ids = BranchTree.ids(b);
  r.tree.current = b;
  pinned = null;
  rewriting = false;
  if (comparing === b) comparing = old;
  if (shared < ids.length) {
    send(r, { at: shared, forced_id: ids[shared] }, { kind: "sync", branch: b });
    for (const id of ids.slice(shared + 1)) send(r, { forced_id: id }, { kind: "sync", branch: b });
  } else {
    send(r, { at: shared, peek: true }, { kind: "peek", branch: b });
  }
  drawBranch();
  drawBranches();
  showCurrent();
}

function stop() {
  if (run && !run.ended) client.stop(run.id);
}

function updateButtons() {
  const streaming = Boolean(run && !run.ended && run.streaming);
  const stepping = Boolean(run && !run.ended && !run.streaming && run.mode === "step" && !run.tree.current.done);
  ui.generate.disabled = streaming;
  ui.step.disabled = streaming;
  ui.stop.disabled = !(streaming || stepping);
}

// ---------------------------------------------------------------- branches and links

/** The current branch's chips and text. */
function drawBranch() {
  const b = run?.tree.current;
  ui.tokens.replaceChildren(...(b?.steps ?? []).map((s) => tokenChip(s, selectToken)));
  ui.tokens.dataset.reason = b?.reason ?? "";
  ui.genText.textContent = b ? branchText(b) : "";
}

function drawBranches() {
  const tree = run?.tree;
  ui.branchBox.hidden = !tree || tree.branches.length < 2;
  if (ui.branchBox.hidden) {
    ui.compare.hidden = true;
    return;
  }
  const locked = busy() || run.ended;
  drawTree(ui.branches, tree, {
    show: (b) => switchTo(b),
    compare: (b) => { comparing = comparing === b ? null : b; drawBranches(); },
  }, { busy: locked, comparing });
  if (comparing && comparing !== tree.current) {
    drawCompare(ui.compare, tree.current, comparing, () => { comparing = null; drawBranches(); });
  } else {
    ui.compare.hidden = true;
  }
}

function saveLink(r) {
  if (r !== run || r.ended) return;
  const p = { ...r.params, seed: r.params.seed ?? r.seed };
  const hash = encodeLink(p, BranchTree.ids(r.tree.current));
  history.replaceState(null, "", hash);
  ui.link.value = location.href;
  ui.linkBox.hidden = false;
}

function clearLink() {
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  ui.linkBox.hidden = true;
  ui.link.value = "";
  ui.linkNote.textContent = "";
}

async function copyLink() {
  ui.link.select();
  try {
    await navigator.clipboard.writeText(ui.link.value);
    ui.linkNote.textContent = t("link.copied");
  } catch {
    ui.linkNote.textContent = t("link.copyByHand");
  }
}

/** A link opened: fill in its model, prompt and settings; a bad one gets a message and a
 * clean start. Returns the link's state, or null. */
function readLink() {
  const got = decodeLink(location.hash, modelIds);
  if (!got) return null;
  if (got.error) {
    clearLink();
    return got;
  }
  const { state } = got;
  ui.model.value = state.model;
  ui.prompt.value = state.prompt;
  promptEdited = true;
  for (const [key, value] of Object.entries(state.fields)) $(key).value = value;
  return state;
}

/** Rebuild a link's text: its tokens replayed as picks, so the bars are the same too. */
function replayLink(state) {
  const p = params({ quiet: true });
  if (!p) return;
  const r = newRun("step", p, true);
  if (state.ids.length) {
    for (const id of state.ids) send(r, { forced_id: id }, { kind: "append", branch: r.tree.current });
  } else {
    send(r, { peek: true }, { kind: "peek", branch: r.tree.current });
  }
  setStatus("generating", t("status.fromLink", { n: state.ids.length }));
}

// A link pasted into this tab's address bar changes only the fragment: open it too.
window.addEventListener("hashchange", () => {
  if (!modelIds.length || location.href === ui.link.value) return;
  const linked = readLink();
  if (!linked) return;
  showModelCard(ui.model.value);
  loadModel(ui.model.value);
  openLink(linked);
});

// ---------------------------------------------------------------- the candidates panel

function selectToken(index) {
  pinned = pinned === index ? null : index;
  rewriting = false;
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
  const b = r.tree.current;
  if (pinned === null && b.upcoming && !r.ended && !r.streaming) {
    ui.candTitle.textContent = t("cand.yourPick", { n: b.upcoming.index + 1 });
    ui.candNote.textContent = t("cand.pickNote");
    drawCandidates(ui.bars, ui.other, b.upcoming, (id) => pick(id));
    drawChosenOutside(ui.outside, null);
    restoreFocus();
    return;
  }
  const s = b.steps[pinned ?? b.steps.length - 1];
  if (!s) return;
  ui.candTitle.replaceChildren(t("cand.token", { n: s.index + 1 }));
  const tok = document.createElement("code");
  tok.className = "tok";
  setTokenText(tok, s.token);
  ui.candTitle.append(tok);
  ui.candNote.replaceChildren(t("cand.chosenNote", { p: percent(s.prob), rank: s.rank, share: percent(s.sample_prob) }));
  const canRewrite = !r.ended && !r.streaming && !r.intents.length;
  const link = (text, action, label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = text;
    if (label) button.setAttribute("aria-label", label);
    button.addEventListener("click", action);
    ui.candNote.append(" ", button);
    return button;
  };
  if (rewriting) {
    ui.candNote.replaceChildren(t("cand.rewriteNote", { n: s.index + 1 }));
    link(t("cand.cancel"), () => { rewriting = false; showCurrent(); });
  } else if (canRewrite) {
    link(t("cand.rewrite"), () => {
      rewriting = true;
      focusBars = true;
      showCurrent();
    }, t("cand.rewriteLabel", { n: s.index + 1 }));
  }
  if (pinned !== null) link(t("cand.latest"), () => selectToken(pinned));
  drawCandidates(ui.bars, ui.other, s, rewriting ? (id) => rewrite(s.index, id) : null,
    rewriting ? (c) => t("cand.rewriteWith", { token: c.token }) : undefined);
  drawChosenOutside(ui.outside, s);
  restoreFocus();
}

function restoreFocus() {
  if (!focusBars) return;
  focusBars = false;
  ui.bars.querySelector("button.tok")?.focus();
}

/** Arrow keys move between the candidates (Enter, a button's own key, picks). */
function onBarsKey(e) {
  const buttons = [...ui.bars.querySelectorAll("button.tok")];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  const to = { ArrowDown: i + 1, ArrowRight: i + 1, ArrowUp: i - 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
  if (to === undefined) {
    if (e.key === "Enter" || e.key === " ") focusBars = true;  // the next list gets the focus
    return;
  }
  e.preventDefault();
  buttons[Math.max(0, Math.min(buttons.length - 1, to))].focus();
}

/** On a narrow screen, bring the candidates into view after Generate or Step: with the
 * buttons at the top when both fit (Step is pressed again and again), else the candidates. */
function revealCandidates() {
  if (!window.matchMedia("(max-width: 60rem)").matches) return;
  requestAnimationFrame(() => {
    const y = (el) => el.getBoundingClientRect().top + window.scrollY;
    const buttons = y(ui.generate.parentElement) - 8;
    const cands = y(ui.candPanel);
    const top = cands - buttons < window.innerHeight * 0.45 ? buttons : cands - 8;
    window.scrollTo({ top, behavior: "smooth" });
  });
}

// ---------------------------------------------------------------- wiring

ui.generate.addEventListener("click", generate);
ui.step.addEventListener("click", () => step());
ui.copyLink.addEventListener("click", copyLink);
ui.bars.addEventListener("keydown", onBarsKey);
ui.stop.addEventListener("click", stop);
ui.model.addEventListener("change", () => {
  showModelCard(ui.model.value);
  loadModel(ui.model.value);
});
ui.prompt.addEventListener("input", () => { promptEdited = true; });
// Once a problem is shown, re-check as the user types, so the message goes when it is fixed.
document.querySelector("main").addEventListener("input", () => {
  if (!ui.paramError.hidden) params({ quiet: true });
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    if (!ui.generate.disabled) generate();
  } else if (e.key === "Escape" && !ui.stop.disabled) {
    stop();
  }
});

// ---------------------------------------------------------------- language

const LANG_KEY = "gpt2web-lang";

/** Show the interface in `lang` ("en" or "zh-CN"); tokens and prompts stay as they are. */
function useLanguage(lang, save = false) {
  const chosen = setLanguage(lang);
  document.documentElement.lang = chosen;
  document.title = t("page.title");
  applyStatic(document);
  ui.lang.value = chosen;
  if (save) {
    try { localStorage.setItem(LANG_KEY, chosen); } catch { /* private mode: this visit only */ }
  }
  if (!run) clearBars(t("cand.start"));
  drawBranch();
  showCurrent();
  drawBranches();
  const ready = modelState.get(ui.model.value);
  if (ready?.state === "ready" && !busy() && ["ready", "loading"].includes(ui.status.dataset.state)) {
    setStatus("ready", readyText(ui.model.value, ready));
  }
}

let storedLang = null;
try { storedLang = localStorage.getItem(LANG_KEY); } catch { /* no storage */ }
useLanguage(storedLang ?? getLanguage());
ui.lang.addEventListener("change", () => useLanguage(ui.lang.value, true));

updateButtons();
setStatus("loading", t("status.starting"));
listModels();
