// The views as tabs under the page's candidates: one open at a time, none at first. A
// closed view asks the worker nothing; an open one asks about the selected step only.

import { AttentionView } from "./attention.js";
import { EmbeddingsView } from "./embeddings.js";
import { el } from "./common.js";
import { LensView } from "./lens.js";
import { LoopView } from "./loop.js";
import { SamplingView } from "./sampling.js";
import { SurpriseView } from "./surprise.js";

export const VIEWS = {
  sampling: SamplingView, attention: AttentionView, lens: LensView, embeddings: EmbeddingsView,
  score: SurpriseView, loop: LoopView,
};

/** Views for a page or a widget. `client`: the GPT2Client; `options` go to every view. */
export class ViewsPanel {
  constructor(container, { client, names = Object.keys(VIEWS), ...options }) {
    this.client = client;
    this.options = { client, ...options };  // given to every view (read when it is made)
    this.names = names;
    this.views = new Map();
    this.open = null;
    this.step = null;
    this.tabs = el("div", { class: "v-tabs", role: "tablist", "aria-label": "Inside the step" });
    this.area = el("div", { class: "v-area", role: "tabpanel", hidden: true });
    this.close = el("button", { type: "button", class: "v-link v-close", text: "Close the view" });
    this.close.addEventListener("click", () => this.select(null));
    this.buttons = names.map((name, i) => {
      const b = el("button", { type: "button", role: "tab", class: "v-tab", id: `v-tab-${name}`,
        "aria-selected": "false", tabindex: i === 0 ? "0" : "-1", text: VIEWS[name].title });
      b.dataset.view = name;
      b.addEventListener("click", () => this.select(this.open === name ? null : name));
      b.addEventListener("keydown", (e) => {
        const k = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity }[e.key];
        if (k === undefined) return;
        e.preventDefault();
        const j = Math.max(0, Math.min(names.length - 1, Number.isFinite(k) ? i + k : k > 0 ? names.length - 1 : 0));
        this.focusTab(j);
      });
      return b;
    });
    this.tabs.append(...this.buttons);
    container.append(this.tabs, this.area);
  }

  focusTab(j) {
    this.buttons.forEach((b, i) => b.setAttribute("tabindex", i === j ? "0" : "-1"));
    this.buttons[j].focus();
  }

  view(name) {
    if (!this.views.has(name)) this.views.set(name, new VIEWS[name](this.options));
    return this.views.get(name);
  }

  /** Open view `name` (null: close them all). */
  select(name) {
    this.open = name;
    for (const b of this.buttons) b.setAttribute("aria-selected", String(b.dataset.view === name));
    if (name) {
      const i = this.names.indexOf(name);
      this.buttons.forEach((b, j) => b.setAttribute("tabindex", j === i ? "0" : "-1"));
      const v = this.view(name);
      this.area.setAttribute("aria-labelledby", `v-tab-${name}`);
      this.area.replaceChildren(v.element, this.close);
      this.area.hidden = false;
      this.refresh();
    } else {
      for (const v of this.views.values()) v.asker?.cancel();
      this.area.hidden = true;
      this.area.replaceChildren();
    }
  }

  /** The selected step changed (or the run moved on): the open view, if any, follows it. */
  setStep(step) {
    const key = step && JSON.stringify([step.model, step.prompt, step.ids, step.settings, step.text,
      step.run?.id, step.run?.steps.length, step.run?.done]);
    if (key === this.key) return;
    this.key = key;
    this.step = step;
    this.refresh();
  }

  refresh() {
    if (!this.open) return;
    const v = this.view(this.open);
    if (this.open === "loop") return v.show(this.step ?? {});
    if (!this.step) {
      v.frame.status.textContent = "Generate or Step first: the view shows the step you select.";
      return;
    }
    v.show(this.step);
  }
}
