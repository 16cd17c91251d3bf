// <gpt2-widget>: GPT-2 in any page, one script tag.
//
//   <script type="module" src="https://SERVER/widget.js"></script>
//   <gpt2-widget prompt="In the beginning" max-tokens="20" seed="1"></gpt2-widget>
//   <gpt2-widget mode="next" prompt="And God said"></gpt2-widget>
//
// Attributes (all optional):
//   model        a model on the gpt2web server (weights/<model>/)          default "demo"
//   prompt       the starting text (or the element's own text)            default "In the beginning"
//   mode         "generate" (Generate / Stop / Step, token chips, bars)   default "generate"
//                "next" (only the next-token table for the prompt)
//                "sampling", "attention", "lens", "embeddings", "score": one view of
//                the prompt's next step (web/views/), e.g. for a lesson
//   max-tokens   tokens per Generate, 1..1024                             default 20
//   temperature  0..10 (0 = always the top token)                         default 1
//   top-k        0 = no limit                                             default 40
//   top-p        (0, 1], 1 = no limit                                     default 1
//   seed         0..2^63-1; empty = a new random seed each time           default empty
//   candidates   bars per step, 1..100                                    default 5
//   settings     "open" shows the settings at first, "none" hides them    default closed
//   loading      "lazy": start the model only when the widget is near the screen
//   theme        "light", "dark" or "auto" (the reader's system setting)   default "light"
//   label        the widget's accessible name                             default "language model demo"
//   lang         the interface's language: "en" or "zh-CN"                default: the browser's
//
// Every widget on a page talks to one shared worker (client.js), which loads each model
// once. The worker comes from the server that served this file, even when the page is
// on another origin (client.js starts it through a same-origin blob then). Everything
// the widget draws lives in an open shadow root: the page's CSS stays out and the
// widget's stays in. Colours can be themed from the page with --gpt2-* custom properties
// (--gpt2-accent, --gpt2-share, --gpt2-bg, --gpt2-panel, --gpt2-text, --gpt2-line, ...).
//
// Events (bubbling, composed; payloads in protocol.md, "Widget events"): gpt2-ready once per
// model {model, name, config, backend, description, examples}, gpt2-token per token (the
// token message), gpt2-done per run (the done message), gpt2-error per problem {kind, message}.

import { GPT2Client } from "./client.js";
import { VIEW_MODES, buildViewMode } from "./views/widget-mode.js";
import { drawCandidates, drawChosenOutside, percent, setTokenText, tokenChip } from "./bars.js";
import { formatBytes } from "./progress.js";
import { MAX_NEW_TOKENS, checkSettings } from "./settings.js";
import { drawAbout, drawExamples, modelCard } from "./about.js";
import { normalizeLanguage, pickLanguage, t } from "./i18n.js";
import { WIDGET_CSS } from "./explore-widget.js";
import "./offline.js";  // keeps the app for offline visits once a model is ready (same origin only)

const WORKER_URL = new URL("worker.js", import.meta.url);

const DEFAULTS = {
  model: "demo", prompt: "In the beginning", mode: "generate", "max-tokens": "20", temperature: "1",
  "top-k": "40", "top-p": "1", seed: "", candidates: "5",
};

const BACKENDS = {
  "wasm-simd128-int8": "int8 WebAssembly SIMD",
  "numpy-int8": "int8 NumPy",
  "numpy-float32": "float32 NumPy",
};

// ---------------------------------------------------------------- styles (shadow DOM)

// The dark palette: for theme="dark", and for theme="auto" when the reader's system is dark.
const DARK = `
  --accent: var(--gpt2-accent, #7ea2ff); --accent-soft: var(--gpt2-accent-soft, #243152);
  --share: var(--gpt2-share, #f0a050); --share-text: var(--gpt2-share-text, #f0a050);
  --bg: var(--gpt2-bg, #14171d); --panel: var(--gpt2-panel, #1c2029); --text: var(--gpt2-text, #e6e9ef);
  --muted: var(--gpt2-muted, #9aa3b5); --line: var(--gpt2-line, #333a48);
  --chosen: var(--gpt2-chosen, #3a3220); --chosen-line: var(--gpt2-chosen-line, #e0b040);
  --error-bg: #3a1f1f; --error-line: #ff7b6b;
  color-scheme: dark;
`;

const CSS = `
:host {
  all: initial;  /* nothing inherited from the page: its fonts and colours stay out */
  display: block;
  contain: content;
  margin: 1.25rem 0;
  --accent: var(--gpt2-accent, #2f5fd0);
  --accent-soft: var(--gpt2-accent-soft, #e4ecff);
  --model: var(--gpt2-model, var(--accent));
  --share: var(--gpt2-share, #d9822b);
  --share-text: var(--gpt2-share-text, #9a520f);
  --bg: var(--gpt2-bg, #f6f7f9);
  --panel: var(--gpt2-panel, #ffffff);
  --text: var(--gpt2-text, #1d2330);
  --muted: var(--gpt2-muted, #5b6475);
  --line: var(--gpt2-line, #d9dde5);
  --chosen: var(--gpt2-chosen, #fff4d6);
  --chosen-line: var(--gpt2-chosen-line, #b07f08);
  --error-bg: #fdecec;
  --error-line: #c0392b;
  --focus: #ff9f1a;
  --mono: var(--gpt2-mono, ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace);
  color-scheme: light;
  color: var(--text);
  font: 15px/1.45 var(--gpt2-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
}
:host([hidden]) { display: none; }
:host([theme="dark"]) {${DARK}}
@media (prefers-color-scheme: dark) {
  :host([theme="auto"]) {${DARK}}
}

* { box-sizing: border-box; }
[hidden] { display: none !important; }

.w {
  container-type: inline-size;
  background: var(--panel);
  border: 1px solid var(--line);
  border-radius: 10px;
  padding: 0.75rem 0.9rem 0.9rem;
}

.head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 0.75rem; margin-bottom: 0.5rem; }
.badge { font-weight: 700; font-size: 0.8rem; letter-spacing: 0.03em; color: var(--accent); }
.model { font-family: var(--mono); font-size: 0.8rem; color: var(--muted); }
.status { margin: 0; margin-left: auto; font-size: 0.85rem; color: var(--muted); font-variant-numeric: tabular-nums; }
.status[data-state="ready"], .status[data-state="done"], .status[data-state="generating"] { color: var(--text); }
.status[data-state="error"] { color: var(--error-line); font-weight: 600; }

.load { display: grid; grid-template-columns: minmax(4rem, 10rem) minmax(0, 1fr); gap: 0.6rem; align-items: center;
        font-size: 0.8rem; color: var(--muted); margin-bottom: 0.5rem; }
.load progress { width: 100%; }
.load-text { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-variant-numeric: tabular-nums; }

.error {
  margin: 0 0 0.6rem; padding: 0.5rem 0.7rem;
  border: 1px solid var(--error-line); border-left-width: 5px; border-radius: 6px;
  background: var(--error-bg); overflow-wrap: anywhere; font-size: 0.9rem;
}

.grid { display: grid; gap: 0.9rem; grid-template-columns: minmax(0, 1fr); }
@container (min-width: 42rem) {
  .grid { grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr); align-items: start; }
}

label, .field-label { display: block; font-weight: 600; font-size: 0.85rem; margin-bottom: 0.2rem; }
textarea, input, button, select { font: inherit; color: inherit; }
textarea {
  display: block; width: 100%; min-height: 3.2rem; resize: vertical;
  padding: 0.4rem 0.55rem; border: 1px solid var(--line); border-radius: 7px; background: var(--bg);
}
.hint { margin: 0.2rem 0 0; font-size: 0.78rem; color: var(--muted); }

.buttons { display: flex; flex-wrap: wrap; gap: 0.4rem; margin: 0.5rem 0; }
button {
  padding: 0.35rem 0.85rem; min-height: 2.25rem;
  border: 1px solid var(--line); border-radius: 7px; background: var(--panel); cursor: pointer;
}
button:hover:not(:disabled) { border-color: var(--accent); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; font-weight: 600; }
:host([theme="dark"]) button.primary { color: #0d1220; }
button:disabled { opacity: 0.5; cursor: not-allowed; }
button.link { padding: 0; min-height: 0; border: 0; background: none; color: var(--accent); text-decoration: underline; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
textarea:focus-visible, input:focus-visible { outline-offset: 0; }
[aria-invalid="true"] { border-color: var(--error-line) !important; outline: 2px solid var(--error-line); }

.settings { margin: 0 0 0.5rem; font-size: 0.85rem; }
.settings summary { cursor: pointer; color: var(--muted); }
.settings summary .values { font-variant-numeric: tabular-nums; }
.fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(7rem, 1fr)); gap: 0.4rem 0.6rem; margin-top: 0.4rem; }
.fields input { width: 100%; padding: 0.25rem 0.4rem; min-height: 2rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.fields small { display: block; color: var(--muted); font-size: 0.72rem; }
.param-error { color: var(--error-line); font-weight: 600; margin: 0 0 0.5rem; font-size: 0.9rem; }

.text {
  margin: 0 0 0.5rem; padding: 0.45rem 0.6rem; border-radius: 7px; background: var(--bg);
  white-space: pre-wrap; overflow-wrap: anywhere; min-height: 2.4rem;
}
.prompt-text { color: var(--muted); }
.gen-text { font-weight: 600; }

.chips { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.25rem; }
.chip {
  min-height: 1.9rem; padding: 0.1rem 0.35rem; font-family: var(--mono); font-size: 0.85rem; white-space: pre;
  border-radius: 6px; background: var(--accent-soft); border-color: transparent;
}
.chip.partial { font-style: italic; background: transparent; border: 1px dashed var(--muted); }
.chip.eot { background: var(--line); }
.chip[aria-pressed="true"] { border-color: var(--chosen-line); background: var(--chosen); }
.sp { position: relative; }
.sp::after { content: "·"; position: absolute; left: 0; right: 0; text-align: center; color: var(--muted); opacity: 0.8; }

.cand-title { margin: 0 0 0.15rem; font-weight: 700; font-size: 0.95rem; }
.cand-title code { font-family: var(--mono); background: var(--accent-soft); padding: 0 0.3rem; border-radius: 4px; white-space: pre; }
.note { margin: 0 0 0.4rem; font-size: 0.82rem; color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 0.2rem 0.9rem; font-size: 0.75rem; color: var(--muted); margin-bottom: 0.35rem; }
.legend span { display: inline-flex; align-items: center; }
.swatch { display: inline-block; width: 0.85rem; height: 0.55rem; border-radius: 2px; margin-right: 0.3rem; }
.swatch.model { background: var(--model); }
.swatch.share { background: var(--share); }

.bars { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.15rem; }
.cand {
  display: grid;
  grid-template-columns: minmax(4rem, 8rem) minmax(3rem, 1fr) auto;
  grid-template-areas: "tok meter prob" "mark track share";
  align-items: center; column-gap: 0.5rem; row-gap: 0.1rem;
  padding: 0.2rem 0.35rem; border-radius: 6px; border-left: 4px solid transparent;
}
.cand.chosen { background: var(--chosen); border-left-color: var(--chosen-line); }
.cand .tok { grid-area: tok; font-family: var(--mono); font-size: 0.85rem; white-space: pre; overflow: hidden; text-overflow: ellipsis; text-align: left; }
button.tok { padding: 0.15rem 0.35rem; min-height: 2rem; background: var(--accent-soft); border-color: transparent; }
.cand meter { grid-area: meter; width: 100%; height: 0.85rem; }
meter::-webkit-meter-bar { background: var(--bg); border: 1px solid var(--line); border-radius: 3px; height: 0.85rem; }
meter::-webkit-meter-optimum-value, meter::-webkit-meter-suboptimum-value,
meter::-webkit-meter-even-less-good-value { background: var(--model); border-radius: 2px; }
meter::-moz-meter-bar { background: var(--model); }
.prob { grid-area: prob; text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; font-size: 0.9rem; }
.share-track { grid-area: track; display: block; height: 0.35rem; }
.share-bar { display: block; height: 100%; min-width: 2px; background: var(--share); border-radius: 2px; }
.share-text { grid-area: share; text-align: right; font-size: 0.72rem; color: var(--share-text); font-variant-numeric: tabular-nums; white-space: nowrap; }
.chosen-mark { grid-area: mark; font-size: 0.68rem; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; color: var(--chosen-line); }
.outside { margin-top: 0.4rem; padding-top: 0.4rem; border-top: 1px dashed var(--line); }
.outside::before { content: "Chosen, outside the top candidates:"; display: block; font-size: 0.75rem; color: var(--muted); margin: 0 0 0.15rem 0.35rem; }
.other { color: var(--muted); margin: 0.35rem 0 0; font-size: 0.82rem; }
${WIDGET_CSS}

@container (max-width: 26rem) {
  .cand { grid-template-columns: minmax(3rem, 6rem) minmax(2.5rem, 1fr) 3.8rem; }
  .load { grid-template-columns: minmax(0, 1fr); }
}
`;

let sheet = null;  // one constructed stylesheet, adopted by every widget's shadow root
function styleInto(root) {
  if ("adoptedStyleSheets" in root && typeof CSSStyleSheet.prototype.replaceSync === "function") {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement("style");
    style.textContent = CSS;
    root.append(style);
  }
}

// ---------------------------------------------------------------- small helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k in node && !k.includes("-")) node[k] = v;  // a property: hidden, disabled, rows...
    else if (v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children);
  return node;
}

/**
 * Loading, as one bar and one line: the worker reports the Python runtime (steps) and the
 * model (vocabulary, shards) side by side, since they load at the same time.
 */
class LoadProgress {
  constructor(model, lang) {
    this.model = model;
    this.lang = lang;
    this.runtime = null;  // {loaded, total, file}
    this.vocab = null;    // bytes so far
    this.shards = null;   // {loaded, total, cached}
    this.preparing = false;
  }

  update(m) {
    if (m.phase === "runtime") this.runtime = { loaded: m.loaded, total: m.total, file: m.file };
    else if (m.phase === "tokenizer") this.vocab = m.loaded;
    else if (m.phase === "shard") this.shards = { loaded: m.model_loaded, total: m.model_total, cached: m.cached };
    else if (m.phase === "prepare") this.preparing = true;
  }

  /** The mean of the parts reported so far (a late joiner may never hear of the runtime). */
  fraction() {
    const parts = [];
    if (this.runtime) parts.push(this.runtime.loaded / Math.max(1, this.runtime.total));
    if (this.shards) parts.push(this.preparing ? 1 : this.shards.loaded / Math.max(1, this.shards.total));
    return parts.length ? parts.reduce((a, b) => a + b, 0) / parts.length : null;
  }

  text() {
    const words = [];
    const rt = this.runtime;
    const tr = (key, vars) => t(key, vars, this.lang);
    if (rt) words.push(rt.loaded >= rt.total ? tr("w.pythonReady") : tr("w.startingPython", rt));
    if (this.preparing) {
      words.push(tr("w.preparing", { model: this.model }));
    } else if (this.shards) {
      words.push(tr("w.modelBytes", { model: this.model, a: formatBytes(this.shards.loaded), b: formatBytes(this.shards.total) }) +
        (this.shards.cached ? tr("w.cached") : ""));
    } else if (this.vocab != null) {
      words.push(tr("w.vocab", { bytes: formatBytes(this.vocab) }));
    }
    return words.join(" · ") || tr("status.loading", { model: this.model });
  }
}

let instances = 0;

// ---------------------------------------------------------------- the element

export class GPT2Widget extends HTMLElement {
  static observedAttributes = [
    "model", "prompt", "mode", "max-tokens", "temperature", "top-k", "top-p", "seed", "candidates",
    "settings", "label", "lang",
  ];

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    styleInto(this.shadowRoot);
    this.n = ++instances;
    this.run = null;        // generate mode: {id, mode, params, key, steps, done, n, upcoming, pending}
    this.pinned = null;     // index of the token whose candidates are shown; null: the latest
    this.modelState = null; // {model, state: "loading" | "ready" | "error", info}
    this.nextId = null;     // next mode: the latest request
    this.started = false;   // whether this widget has asked for its model yet
    this.built = false;
  }

  // -------------------------------------------------------------- attributes

  attr(name) {
    const v = this.getAttribute(name);
    return v == null ? DEFAULTS[name] : v.trim();
  }

  get model() { return this.attr("model") || DEFAULTS.model; }
  get mode() {
    const m = this.attr("mode");
    return m === "next" || VIEW_MODES.includes(m) ? m : "generate";  // views/widget-mode.js: one view
  }
  get candidates() {
    const n = Number(this.attr("candidates"));
    return Number.isInteger(n) && n >= 1 && n <= 100 ? n : Number(DEFAULTS.candidates);
  }
  get initialPrompt() {
    if (this.hasAttribute("prompt")) return this.getAttribute("prompt");
    const own = this.textContent.replace(/\s+/g, " ").trim();  // <gpt2-widget>Once upon</gpt2-widget>
    return own || DEFAULTS.prompt;
  }
  /** Whether the page's author chose the prompt (then the model's examples do not replace it). */
  get authoredPrompt() {
    return this.hasAttribute("prompt") || this.textContent.trim() !== "";
  }
  /** "loading", "ready", "generating", "done", "stopped" or "error" (as the status shows it). */
  get state() { return this.ui?.status.dataset.state ?? "idle"; }

  attributeChangedCallback(name, old, value) {
    if (!this.built || old === value) return;
    if (name === "mode" || name === "lang") {
      this.reset();
      this.build();
      this.start();
    } else if (name === "model") {
      this.reset();
      this.build();
      this.start();
    } else if (name === "prompt") {
      this.ui.prompt.value = this.initialPrompt;
      this.viewMode?.request();
      if (this.mode === "next") this.requestNext();
    } else if (name === "label") {
      this.ui.region.setAttribute("aria-label", this.label);
    } else if (name === "settings") {
      if (this.ui.settings) {
        this.ui.settings.open = value === "open";
        this.ui.settings.hidden = value === "none";
      }
    } else if (this.mode === "generate") {
      this.fillSettings();
    } else if (name === "candidates") {
      this.requestNext();
    }
  }

  get label() { return this.getAttribute("label") || this.t("w.label"); }

  /** The interface's language: the `lang` attribute ("en", "zh-CN"), else the browser's. */
  get uiLang() { return normalizeLanguage(this.getAttribute("lang")) ?? pickLanguage(); }

  /** The text of `key` in this widget's language (i18n.js). */
  t(key, vars = {}) { return t(key, vars, this.uiLang); }

  // -------------------------------------------------------------- life cycle

  connectedCallback() {
    if (!this.built) this.build();
    if (this.staticView && !this.started) return this.waitForReader();
    if (this.getAttribute("loading") === "lazy" && !this.started && "IntersectionObserver" in window) {
      this.setStatus("idle", this.t("w.lazy"));
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.start();
      }, { rootMargin: "600px" });
      this.observer.observe(this);
    } else {
      this.start();
    }
  }

  disconnectedCallback() {
    this.observer?.disconnect();
    this.observer = null;
    clearTimeout(this.debounce);
    if (this.run) this.client?.stop(this.run.id);  // also frees a finished step session
    this.run = null;
    this.started = false;  // connected again: ask again (a loaded model answers at once)
  }

  reset() {
    if (this.run) this.client?.stop(this.run.id);
    this.run = null;
    this.pinned = null;
    this.nextId = null;
    this.modelState = null;
    this.progress = null;
    this.started = false;
  }

  /** The page's one client; null (and an error shown) if the worker cannot be created. */
  getClient() {
    if (!this.client) {
      try {
        this.client = GPT2Client.shared(WORKER_URL);
      } catch (e) {
        this.showError({ kind: "runtime", message: `the model worker could not be created: ${e.message ?? e}` });
        this.setStatus("error", this.t("w.couldNotStart"));
        return null;
      }
    }
    return this.client;
  }

  /** Ask for the model (generate mode) or the table (next mode): the first widget starts the worker. */
  start() {
    this.observer?.disconnect();
    this.observer = null;
    if (this.started || !this.isConnected) return;
    this.started = true;
    this.loadModel();  // in next mode too: a `next` request hears of the model only once Python is up
    if (this.mode === "next") this.requestNext();
    this.viewMode?.request();
  }

  // -------------------------------------------------------------- a first view rendered with the page

  /** Children rendered when the page was built (`gpt2web render`: real bars, no script
   * needed) stay on show through a slot until the live view has its first result. */
  showStatic() {
    const view = this.querySelector(":scope > .gpt2-static");
    if (!view || this.liveShown) return;
    this.staticView = view;
    this.staticStatus = view.querySelector(".status") ?? el("span");
    this.ui.region.hidden = true;
    this.ui.slot = el("slot");
    this.shadowRoot.append(this.ui.slot);
  }

  /** Nothing loads until the reader clicks a button or the prompt (loading="eager": at once). */
  waitForReader() {
    if (this.getAttribute("loading") === "eager") return this.wake();
    if (this.waiting) return;
    this.waiting = (e) => {
      const target = e.target.closest?.("button, textarea, .chip");
      if (!target || (e.type === "keydown" && (e.key === "Tab" || e.key === "Shift"))) return;
      this.wake(target.classList.contains("example") ? target.textContent : null);
    };
    this.addEventListener("click", this.waiting);
    this.addEventListener("keydown", this.waiting);
  }

  wake(example = null) {
    this.removeEventListener("click", this.waiting);
    this.removeEventListener("keydown", this.waiting);
    this.waiting = null;
    this.woken = true;
    // Its status line now tells of the loading: the view keeps its height meanwhile.
    if (this.staticView) this.staticView.style.minHeight = `${this.getBoundingClientRect().height}px`;
    const view = this.staticView?.dataset.view;
    if (example !== null) {  // one of the model's example prompts: the reader's choice
      this.ui.prompt.value = example;
      this.promptEdited = true;
    }
    if (view === "generate" && this.mode === "generate") {
      this.generate();  // the same settings and seed: the same tokens, now live
    } else {
      if (view !== "next") this.showLive();
      this.start();
    }
  }

  /** Swap the live view in, at least as tall as the static one was (nothing below moves). */
  showLive() {
    const ui = this.ui;
    if (!ui?.slot) return;
    const height = this.getBoundingClientRect().height;
    const focused = this.staticView.contains(document.activeElement);
    ui.slot.remove();
    ui.slot = null;
    ui.region.hidden = false;
    if (height > 0) ui.region.style.minHeight = `${height}px`;
    this.staticView.remove();
    this.staticView = null;
    this.liveShown = true;
    if (focused) (ui.generate ?? ui.show)?.focus();
  }

  // -------------------------------------------------------------- building the DOM

  build() {
    const root = this.shadowRoot;
    for (const node of [...root.childNodes]) if (node.nodeName !== "STYLE") node.remove();
    const next = this.mode === "next";
    const ui = {};
    this.ui = ui;

    ui.status = el("p", { class: "status", role: "status", id: "status" });
    ui.about = { name: el("strong", { class: "about-name" }), desc: el("span") };
    ui.about.about = el("p", { class: "about", hidden: true }, ui.about.name, " ", ui.about.desc);
    ui.status.dataset.state = "idle";
    ui.loadBar = el("progress", { "aria-label": this.t("w.loadingLabel") });
    ui.loadText = el("span", { class: "load-text" });
    ui.load = el("div", { class: "load", hidden: true }, ui.loadBar, ui.loadText);
    ui.error = el("div", { class: "error", role: "alert", hidden: true });
    this.viewMode = VIEW_MODES.includes(this.mode) ? buildViewMode(this, this.mode) : null;
    if (this.viewMode) {
      this.built = true;
      this.setStatus("idle", "Waiting for the model…");
      return;
    }

    ui.prompt = el("textarea", {
      id: "prompt", rows: 2, spellcheck: false, "aria-describedby": "prompt-hint",
    });
    ui.prompt.value = this.initialPrompt;
    ui.prompt.addEventListener("input", () => { this.promptEdited = true; });
    ui.examples = el("div", { class: "examples", hidden: true }, el("span", { text: this.t("examples.label") }));
    const left = el("div", { class: "left" },
      el("label", { for: "prompt", text: this.t("prompt.label") }), ui.prompt, ui.examples);

    ui.candTitle = el("p", { class: "cand-title", id: "cand-title", text: this.t("cand.title") });
    ui.note = el("p", { class: "note", id: "cand-note" });
    ui.bars = el("ol", { class: "bars", "aria-labelledby": "cand-title", "aria-describedby": "cand-note" });
    ui.other = el("p", { class: "other" });
    ui.outside = el("ol", {
      class: "bars outside", hidden: true, "aria-label": "the chosen token, outside the top candidates",
    });
    const legend = el("div", { class: "legend", "aria-hidden": "true" },
      el("span", {}, el("i", { class: "swatch model" }), this.t("legend.model")));
    if (!next) {
      legend.append(el("span", {}, el("i", { class: "swatch share" }), this.t("legend.share")));
    }
    const right = el("div", { class: "right" }, ui.candTitle, ui.note, legend, ui.bars, ui.other, ui.outside);

    if (next) {
      left.append(el("p", {
        class: "hint", id: "prompt-hint",
        text: this.t("w.nextHint"),
      }));
      ui.show = el("button", { type: "button", class: "primary", text: this.t("w.show") });
      left.append(el("div", { class: "buttons" }, ui.show));
      ui.show.addEventListener("click", () => this.requestNext());
      ui.prompt.addEventListener("input", () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.requestNext(), 350);
      });
      ui.candTitle.textContent = this.t("w.nextTitle");
      ui.note.textContent = this.t("w.waiting");
    } else {
      left.append(el("p", {
        class: "hint", id: "prompt-hint",
        text: this.t("prompt.hint"),
      }));
      ui.generate = el("button", { type: "button", class: "primary", text: this.t("button.generate") });
      ui.stop = el("button", { type: "button", text: this.t("button.stop"), disabled: true });
      ui.step = el("button", { type: "button", text: this.t("button.step") });
      left.append(el("div", { class: "buttons" }, ui.generate, ui.stop, ui.step));
      ui.generate.addEventListener("click", () => this.generate());
      ui.stop.addEventListener("click", () => this.stop());
      ui.step.addEventListener("click", () => this.step());

      ui.fields = {};
      const field = (key, name, attrs, hint) => {
        const input = el("input", { id: key, ...attrs });
        ui.fields[key] = input;
        input.addEventListener("input", () => {
          this.updateSummary();
          if (!ui.paramError.hidden) this.params({ quiet: true });
        });
        return el("div", { class: "field" }, el("label", { for: key, text: name }), input,
          hint ? el("small", { text: hint }) : "");
      };
      ui.summary = el("span", { class: "values" });
      ui.settings = el("details", { class: "settings" },
        el("summary", {}, this.t("settings.summary"), ui.summary),
        el("div", { class: "fields" },
          field("temperature", this.t("settings.temperature"), { type: "number", inputMode: "decimal", min: 0, max: 10, step: 0.1 },
            this.t("settings.temperatureHint")),
          field("top_k", this.t("settings.topK"), { type: "number", inputMode: "numeric", min: 0, step: 1 }, this.t("settings.topKHint")),
          field("top_p", this.t("settings.topP"), { type: "number", inputMode: "decimal", min: 0, max: 1, step: 0.05 }, this.t("settings.topPHint")),
          field("seed", this.t("settings.seed"), { type: "text", inputMode: "numeric", placeholder: this.t("settings.seedPlaceholder"), autocomplete: "off" },
            this.t("settings.seedHint")),
          field("max_tokens", this.t("settings.maxTokens"), { type: "number", inputMode: "numeric", min: 1, max: MAX_NEW_TOKENS, step: 1 })));
      ui.settings.open = this.getAttribute("settings") === "open";
      ui.settings.hidden = this.getAttribute("settings") === "none";
      ui.paramError = el("p", { class: "param-error", role: "alert", hidden: true });
      ui.promptText = el("span", { class: "prompt-text" });
      ui.genText = el("span", { class: "gen-text" });
      ui.text = el("p", { class: "text" }, ui.promptText, ui.genText);
      ui.text.hidden = true;
      ui.tokens = el("ol", { class: "chips", "aria-label": "generated tokens" });
      left.append(ui.settings, ui.paramError, ui.text, ui.tokens);
      ui.note.textContent = this.t("cand.start");
      this.fillSettings();
    }

    ui.region = el("section", { class: "w", "aria-label": this.label },
      el("div", { class: "head" },
        el("span", { class: "badge", text: "gpt2web" }),
        ui.modelName = el("span", { class: "model", text: this.t("w.modelName", { model: this.model }) }),
        ui.status),
      ui.about.about, ui.load, ui.error,
      el("div", { class: "grid" }, left, right));
    ui.region.addEventListener("keydown", (e) => this.onKey(e));
    ui.region.lang = this.uiLang;
    root.append(ui.region);
    this.showStatic();
    this.built = true;
    this.setStatus("idle", this.t("w.waiting"));
  }

  fillSettings() {
    const f = this.ui.fields;
    f.temperature.value = this.attr("temperature");
    f.top_k.value = this.attr("top-k");
    f.top_p.value = this.attr("top-p");
    f.seed.value = this.attr("seed");
    f.max_tokens.value = this.attr("max-tokens");
    this.updateSummary();
  }

  updateSummary() {
    const f = this.ui.fields;
    const seed = f.seed.value.trim();
    this.ui.summary.textContent = this.t("w.summary", {
      temperature: f.temperature.value || "?", top_k: f.top_k.value || "?",
      top_p: f.top_p.value.trim() && Number(f.top_p.value) !== 1 ? f.top_p.value : null,
      seed: seed || null, max: f.max_tokens.value || "?",
    });
  }

  onKey(e) {
    if (this.mode !== "generate") return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!this.ui.generate.disabled) this.generate();
    } else if (e.key === "Escape" && this.run && !this.run.done) {
      e.preventDefault();
      this.stop();
    }
  }

  // -------------------------------------------------------------- status, progress, errors

  setStatus(state, text) {
    this.ui.status.dataset.state = state;
    this.ui.status.textContent = text;
    if (this.ui.slot && this.woken) this.staticStatus.textContent = text;  // still the static view
  }

  showError({ kind, message }) {
    this.showLive();
    const ui = this.ui;
    const title = this.t(`error.${kind}`);
    ui.error.replaceChildren(el("strong", { text: `${title === `error.${kind}` ? this.t("error.other") : title}: ` }), message);
    ui.error.dataset.kind = kind;
    ui.error.hidden = false;
    // One event per problem: the model's load and a request waiting for it fail alike.
    const key = `${kind}\n${message}`;
    if (this.lastError === key) return;
    this.lastError = key;
    this.emit("gpt2-error", { kind, message });
  }

  clearError() {
    this.lastError = null;
    this.ui.error.hidden = true;
    this.ui.error.replaceChildren();
    delete this.ui.error.dataset.kind;
  }

  onProgress(m) {
    if (this.modelState?.state === "ready") return;
    const ui = this.ui;
    if (this.progress?.model !== this.model) this.progress = new LoadProgress(this.model, this.uiLang);
    this.progress.update(m);
    ui.load.hidden = false;
    const f = this.progress.fraction();
    if (f == null) {
      ui.loadBar.removeAttribute("value");  // indeterminate
    } else {
      ui.loadBar.max = 1;
      ui.loadBar.value = f;
    }
    ui.loadText.textContent = this.progress.text();
    ui.loadText.title = ui.loadText.textContent;
  }

  /** The model answered a request (a table, a token): it is loaded, whatever `ready` says later. */
  markLoaded() {
    if (this.modelState?.state !== "ready") this.modelState = { model: this.model, state: "ready", info: null };
    this.ui.load.hidden = true;
  }

  /** The worker's `ready` for this widget's model: gpt2-ready, once per model. */
  onReady(m) {
    const first = !this.modelState?.info;
    this.modelState = { model: this.model, state: "ready", info: m };
    this.ui.load.hidden = true;
    this.showModelCard(m);
    if (first) {
      this.emit("gpt2-ready", { model: m.model, config: m.config, backend: m.backend, name: m.name ?? m.model,
        description: m.description ?? null, examples: m.examples ?? [] });
    }
  }

  /** The model's name and one line about it; its example prompts (the first one to start
   * with, unless the page's author chose a prompt or the reader typed one). */
  showModelCard(m) {
    const card = modelCard(m, this.model);
    drawAbout(this.ui.about, card);
    this.ui.modelName.textContent = card.name;
    drawExamples(this.ui.examples, card.examples, (prompt) => {
      this.ui.prompt.value = prompt;
      this.promptEdited = true;
      if (this.mode === "next") this.requestNext();
    });
    if (card.examples.length && !this.authoredPrompt && !this.promptEdited && this.ui.prompt.value !== card.examples[0]) {
      this.ui.prompt.value = card.examples[0];
      if (this.mode === "next") this.requestNext();
    }
  }

  readyText() {
    const info = this.modelState?.info;
    if (!info?.config) return this.t("w.ready0");
    return this.t("w.ready", { layers: info.config.n_layer, backend: BACKENDS[info.backend] ?? info.backend });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  // -------------------------------------------------------------- the model

  loadModel() {
    const client = this.getClient();
    if (!client) return;
    const model = this.model;
    this.modelState = { model, state: "loading" };
    this.setStatus("loading", this.t("w.loading"));
    client.send({ type: "load", model }, (m) => {
      if (this.modelState?.model !== model || !this.started) return;  // reset meanwhile
      if (m.type === "progress") {
        this.onProgress(m);
      } else if (m.type === "ready") {
        this.onReady(m);
        if (!this.run || this.run.done) this.setStatus("ready", this.readyText());
      } else if (m.type === "error") {
        if (this.modelState?.state === "error") return;  // a `next` request said so already
        this.modelState = { model, state: "error" };
        this.ui.load.hidden = true;
        this.setStatus("error", this.t("status.couldNotLoad", { model }));
        this.showError(m);
      }
    });
  }

  // -------------------------------------------------------------- next mode

  requestNext() {
    if (this.mode !== "next" || !this.built) return;
    clearTimeout(this.debounce);
    this.started = true;
    const client = this.getClient();
    if (!client) return;
    const prompt = this.ui.prompt.value;
    if (prompt === "") {
      this.nextId = null;
      this.ui.prompt.setAttribute("aria-invalid", "true");
      this.ui.note.textContent = this.t("w.emptyNext");
      this.ui.bars.replaceChildren();
      this.ui.other.textContent = "";
      return;
    }
    this.ui.prompt.removeAttribute("aria-invalid");
    const model = this.model;
    if (this.modelState?.state !== "ready") {
      this.modelState = { model, state: "loading" };
      this.setStatus("loading", this.t("w.loading"));
    }
    const id = client.send({ type: "next", model, prompt, top: this.candidates }, (m) => {
      if (m.type === "progress") {
        if (id === this.nextId) this.onProgress(m);
        return;
      }
      if (id !== this.nextId) return;  // an older prompt's answer
      if (m.type === "next") {
        this.markLoaded();
        this.clearError();
        this.drawNext(prompt, m.tokens);
        this.setStatus("ready", this.readyText());
      } else if (m.type === "error") {
        if (m.kind !== "prompt" && this.modelState?.state === "error") return;  // shown already (load)
        this.ui.load.hidden = true;
        this.ui.bars.replaceChildren();  // the table of another prompt would read as this one's
        this.ui.other.textContent = "";
        this.ui.note.textContent = this.t("w.noTable");
        if (m.kind === "prompt") {
          this.ui.prompt.setAttribute("aria-invalid", "true");
        } else {
          this.modelState = { model, state: "error" };
        }
        this.setStatus("error", m.kind === "prompt" ? this.t("w.promptProblem") : this.t("status.couldNotLoad", { model }));
        this.showError(m);
      }
    });
    this.nextId = id;
  }

  drawNext(prompt, tokens) {
    const ui = this.ui;
    const shown = tokens.reduce((sum, t) => sum + t.prob, 0);
    ui.candTitle.replaceChildren(this.t("w.nextAfter"));
    const tail = prompt.length > 40 ? `…${prompt.slice(-40)}` : prompt;
    ui.candTitle.append(el("code", { text: tail }));
    ui.note.textContent = this.t("w.nextNote", { n: tokens.length });
    drawCandidates(ui.bars, ui.other, { candidates: tokens.map((tok) => ({ ...tok, chosen: false })), shown_mass: shown },
      null, undefined, this.uiLang);
    this.showLive();
  }

  // -------------------------------------------------------------- generate mode

  /** The settings as a generate/step message's fields, or null (and the problem shown). */
  params({ quiet = false } = {}) {
    const ui = this.ui;
    const result = readParams(ui, this.model, this.candidates, this.uiLang);
    ui.paramError.hidden = !result.error;
    ui.paramError.textContent = result.error ?? "";
    for (const node of ui.region.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    if (result.error) {
      const field = result.field === "prompt" ? ui.prompt : ui.fields[result.field];
      field.setAttribute("aria-invalid", "true");
      if (field !== ui.prompt) ui.settings.open = true;
      if (!quiet) {
        field.focus();
        this.clearOutput();
        this.setStatus("error", this.t("w.nothingRan"));
        this.paramStatus = true;
      }
      return null;
    }
    if (this.paramStatus && this.modelState?.state === "ready") this.setStatus("ready", this.readyText());
    this.paramStatus = false;
    return result.params;
  }

  /** Nothing left on screen from an earlier run (it would read as the answer to this one). */
  clearOutput() {
    const ui = this.ui;
    if (this.run) this.client?.stop(this.run.id);
    this.run = null;
    this.pinned = null;
    this.clearError();
    ui.text.hidden = true;
    ui.promptText.textContent = "";
    ui.genText.textContent = "";
    ui.tokens.replaceChildren();
    ui.tokens.dataset.reason = "";
    this.clearBars(this.t("cand.start"));
    this.updateButtons();
  }

  clearBars(note) {
    const ui = this.ui;
    ui.bars.replaceChildren();
    ui.other.textContent = "";
    drawChosenOutside(ui.outside, null);
    ui.candTitle.textContent = this.t("cand.title");
    ui.note.textContent = note;
  }

  newRun(mode, params) {
    const ui = this.ui;
    if (this.run) this.client.stop(this.run.id);  // a finished step session is kept until stopped
    if (this.modelState?.state === "error") this.modelState = null;  // try again
    this.clearError();
    this.run = {
      id: this.client.newId(`w${this.n}${mode === "step" ? "s" : "g"}`), mode, params, key: JSON.stringify(params),
      steps: [], done: false, n: 0, upcoming: null, pending: false,
    };
    this.pinned = null;
    ui.text.hidden = false;
    ui.promptText.textContent = params.prompt;
    ui.genText.textContent = "";
    ui.tokens.replaceChildren();
    ui.tokens.dataset.reason = "";
    ui.bars.replaceChildren();
    ui.other.textContent = "";
    drawChosenOutside(ui.outside, null);
    ui.candTitle.textContent = this.t("cand.title");
    ui.note.textContent = this.t("cand.waiting");
    return this.run;
  }

  generate() {
    if (!this.getClient()) return;
    this.start();
    const p = this.params();
    if (!p) return;
    const r = this.newRun("generate", p);
    this.client.send({ type: "generate", id: r.id, ...p }, (m) => this.onMessage(r, m));
    this.setStatus("generating", this.modelState?.state === "ready" ? this.t("status.generating0") : this.t("w.loading"));
    this.updateButtons();
  }

  step(forcedId = null) {
    if (!this.getClient()) return;
    this.start();
    const p = this.params();
    if (!p) return;
    // Same prompt and settings: continue the session; anything changed: a new one.
    let r = this.run;
    const message = { type: "step", ...p };
    if (!r || r.mode !== "step" || r.done || r.key !== JSON.stringify(p)) {
      if (forcedId !== null) return;  // a pick from a finished session
      r = this.newRun("step", p);
      message.peek = true;  // first the candidates for token 1: the reader may pick it too
    }
    r.pending = true;
    message.id = r.id;
    if (forcedId !== null) message.forced_id = forcedId;
    this.client.send(message, (m) => this.onMessage(r, m));
    if (r.n === 0) this.setStatus("generating", this.modelState?.state === "ready" ? this.t("w.stepping0") : this.t("w.loading"));
    this.updateButtons();
  }

  stop() {
    if (this.run && !this.run.done) this.client.stop(this.run.id);
  }

  onMessage(r, m) {
    if (r !== this.run) return;  // an old run's late messages
    const ui = this.ui;
    switch (m.type) {
      case "progress":
        this.onProgress(m);
        break;
      case "token":
        this.onToken(r, m);
        break;
      case "candidates":  // Step's first answer: token 1's candidates, nothing appended yet
        r.pending = false;
        r.upcoming = m;
        this.markLoaded();
        this.setStatus("generating", this.t("status.firstPick"));
        this.showCurrent();
        this.updateButtons();
        break;
      case "done": {
        r.done = true;
        r.pending = false;
        r.upcoming = null;
        ui.tokens.dataset.reason = m.reason;
        if (m.text !== ui.genText.textContent) ui.genText.textContent = m.text;
        const stopped = m.reason === "stopped";
        this.setStatus(stopped ? "stopped" : "done",
          this.t(stopped ? "status.stopped" : "status.done", { n: m.tokens }) +
          (stopped ? "" : ` (${this.t(`reason.${m.reason}`)})`) +
          (m.seed != null && r.params.temperature > 0 ? this.t("w.seedEnd", { seed: m.seed }) : "."));  // greedy: no draws
        this.showCurrent();
        this.updateButtons();
        this.showLive();
        this.emit("gpt2-done", m);
        break;
      }
      case "error": {
        r.done = true;
        r.pending = false;
        r.upcoming = null;
        ui.load.hidden = true;
        if (!r.steps.length) this.clearBars(this.t("cand.none"));
        this.showError(m);
        if (m.kind === "prompt") ui.prompt.setAttribute("aria-invalid", "true");
        const loading = m.kind === "shard" || (m.kind === "runtime" && this.modelState?.state !== "ready");
        this.setStatus("error", loading ? this.t("status.couldNotLoad", { model: r.params.model }) : this.t("status.failed"));
        this.updateButtons();
        break;
      }
    }
  }

  onToken(r, m) {
    const ui = this.ui;
    this.markLoaded();
    r.n += 1;
    r.pending = false;
    r.steps.push(m);
    r.upcoming = m.upcoming ?? null;
    ui.tokens.append(tokenChip(m, (index) => this.selectToken(index), this.uiLang));
    ui.genText.textContent += m.text;
    this.setStatus("generating", this.t(r.mode === "step" ? "status.stepping" : "status.generating", { n: r.n }) + "…");
    this.showCurrent();
    this.updateButtons();
    this.emit("gpt2-token", m);
  }

  updateButtons() {
    const ui = this.ui;
    const r = this.run;
    const generating = Boolean(r && !r.done && r.mode === "generate");
    const stepping = Boolean(r && !r.done && r.mode === "step");
    ui.generate.disabled = generating;
    ui.step.disabled = generating;
    ui.stop.disabled = !(generating || stepping);
  }

  selectToken(index) {
    this.pinned = this.pinned === index ? null : index;
    this.showCurrent();
  }

  /** The pinned token's candidates, else the upcoming choice (Step), else the latest token's. */
  showCurrent() {
    const ui = this.ui;
    const r = this.run;
    for (const chip of ui.tokens.querySelectorAll(".chip")) {
      chip.setAttribute("aria-pressed", String(Number(chip.dataset.index) === this.pinned));
    }
    if (!r) return;
    if (this.pinned === null && r.upcoming && !r.done) {
      ui.candTitle.textContent = this.t("cand.yourPick", { n: r.upcoming.index + 1 });
      ui.note.textContent = this.t("cand.pickNote");
      drawCandidates(ui.bars, ui.other, r.upcoming, (id) => { if (!r.pending) this.step(id); },
        (c) => this.t("cand.append", { token: c.token }), this.uiLang);
      drawChosenOutside(ui.outside, null);
      return;
    }
    const s = r.steps[this.pinned ?? r.steps.length - 1];
    if (!s) return;
    ui.candTitle.replaceChildren(this.t("cand.token", { n: s.index + 1 }));
    const tok = el("code");
    setTokenText(tok, s.token);
    ui.candTitle.append(tok);
    ui.note.replaceChildren(
      this.t("cand.chosenNote", { p: percent(s.prob), rank: s.rank, share: percent(s.sample_prob) }));
    if (this.pinned !== null) {
      const back = el("button", { type: "button", class: "link", text: this.t("cand.latest") });
      back.addEventListener("click", () => this.selectToken(this.pinned));
      ui.note.append(" ", back);
    }
    drawCandidates(ui.bars, ui.other, s, null, undefined, this.uiLang);
    drawChosenOutside(ui.outside, s, this.uiLang);
  }
}

/** Check the widget's prompt and settings with the main page's rules (settings.js). */
function readParams(ui, model, candidates, lang) {
  return checkSettings((key) => ui.fields[key].value, { model, prompt: ui.prompt.value, candidates, lang });
}

// Loaded twice (two script tags, two URLs)? The first definition stays.
if (!customElements.get("gpt2-widget")) customElements.define("gpt2-widget", GPT2Widget);
