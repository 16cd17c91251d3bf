// A <gpt2-widget> showing one view for its prompt: mode="sampling" | "attention" | "lens" |
// "embeddings" | "score". The step is the prompt's next token (nothing generated yet), so a
// lesson can put exactly one idea next to its text.

import { el } from "./common.js";
import { VIEWS } from "./panel.js";

export const VIEW_MODES = ["sampling", "attention", "lens", "embeddings", "score"];

const CSS_URL = new URL("views.css", import.meta.url);

const HINTS = {
  sampling: "Move the settings: the bars are redrawn from the same logits, no new forward pass.",
  attention: "Pick a layer and a head, or a position in the row of tokens.",
  lens: "Edit the prompt and press Show to read the model layer by layer.",
  embeddings: "Pick a token to see its nearest tokens.",
  score: "Paste any text and press Score.",
};

/**
 * Build the view mode into `w` (the widget): the same status, loading bar and error as the
 * other modes (w.ui.status, w.ui.load, w.ui.error), a prompt, and the view.
 * Returns {request()}: draw the view for the current prompt (once the model is asked for).
 */
export function buildViewMode(w, mode) {
  const ui = w.ui;
  const View = VIEWS[mode];
  const view = new View({ client: w.getClient() });
  const root = w.shadowRoot;
  root.append(el("link", { rel: "stylesheet", href: CSS_URL.href }));
  const score = mode === "score";  // the view has its own text box and button
  ui.prompt = score ? view.text : el("textarea", { id: "prompt", rows: 2, spellcheck: false, "aria-describedby": "prompt-hint" });
  ui.prompt.value = w.initialPrompt;
  ui.show = score ? view.button : el("button", { type: "button", class: "primary", text: "Show" });
  const request = () => {
    if (!w.started) return;
    const prompt = ui.prompt.value;
    if (prompt === "") {
      ui.prompt.setAttribute("aria-invalid", "true");
      view.frame.showError({ message: "The prompt is empty: type some text first." });
      return;
    }
    ui.prompt.removeAttribute("aria-invalid");
    const config = w.modelState?.info?.config ?? null;
    const seed = w.attr("seed");
    view.scored = null;
    view.show({
      model: w.model, prompt, ids: [], index: 0, text: prompt, config,
      settings: {
        temperature: Number(w.attr("temperature")), top_k: Number(w.attr("top-k")), top_p: Number(w.attr("top-p")),
        seed: /^\d+$/.test(seed) ? (Number(seed) <= Number.MAX_SAFE_INTEGER ? Number(seed) : seed) : 1,
      },
    });
  };
  let left = null;
  if (!score) {
    ui.show.addEventListener("click", request);
    ui.prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); request(); }
    });
    left = el("div", { class: "v-wprompt" },
      el("label", { for: "prompt", text: "Prompt" }), ui.prompt,
      el("p", { class: "hint", id: "prompt-hint", text: HINTS[mode] }),
      el("div", { class: "buttons" }, ui.show));
  }
  // What the other modes fill in once the model is ready: its name, its example prompts
  // (kept hidden here: a lesson's view shows the lesson's prompt).
  ui.modelName = el("span", { text: w.model });
  ui.examples = el("div", { class: "examples", hidden: true }, el("span"));
  ui.region = el("section", { class: "w", "aria-label": w.label },
    el("div", { class: "head" },
      el("span", { class: "badge", text: "GPT-2" }),
      el("span", { class: "model" }, "model ", ui.modelName, ` · ${View.title}`),
      ui.status),
    ...(ui.about?.about ? [ui.about.about] : []), ui.load, ui.error, left, el("div", { class: "v-wview" }, view.element));
  root.append(ui.region);
  return { view, request };
}
