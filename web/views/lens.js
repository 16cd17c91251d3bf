// Layer by layer (the logit lens): what the final layer norm and the LM head would predict
// from the residual stream after the embeddings and after each block. The last row is the
// step's own candidates: the reader watches the prediction form.

import { Asker, NumbersTable, contextLabel, el, percent, tok, viewFrame } from "./common.js";

const TOP = 5;

export class LensView {
  static title = "Layer by layer";

  constructor({ client }) {
    this.frame = viewFrame(LensView.title,
      "Each block adds to a running sum, the residual stream. Reading that sum with the model's last " +
      "step (the final layer norm, then the LM head) after every block shows how the prediction forms, " +
      "layer by layer. After the embeddings alone, no token has looked at any other yet. The last row " +
      "is the model's real output.");
    this.element = this.frame.element;
    this.element.classList.add("v-lens");
    this.asker = new Asker(client, (m) => this.draw(m), (m) => this.frame.showError(m));
    this.grid = el("ol", { class: "v-lgrid", "aria-hidden": "true" });
    this.numbers = new NumbersTable(LensView.title);
    this.frame.body.append(this.grid, this.numbers.element);
  }

  show(step) {
    this.step = step;
    const { model, prompt, ids } = step;
    this.asker.ask({ type: "explain", view: "lens", model, prompt, ids, top: TOP });
  }

  draw(m) {
    this.frame.clearError();
    this.element.dataset.draws = Number(this.element.dataset.draws ?? 0) + 1;
    const final = m.layers[m.layers.length - 1].top[0];
    const name = (k) => (k === 0 ? "embeddings" : `block ${k}`);
    this.frame.status.textContent = `Step ${this.step.index + 1}, after “${contextLabel(m.tokens)}”. ` +
      `The final pick's favourite, “${final.token}”, is highlighted where it appears.`;
    this.grid.replaceChildren(...m.layers.map((L) => el("li", { class: "v-lrow" },
      el("span", { class: "v-lname", text: name(L.layer) + (L.layer === m.layers.length - 1 ? " (output)" : "") }),
      el("span", { class: "v-lcells" }, ...L.top.map((t) => {
        const b = el("span", { class: "v-bar v-model" });
        b.style.width = `${t.prob * 100}%`;
        return el("span", { class: `v-lcell${t.id === final.id ? " v-final" : ""}`, title: `id ${t.id}`, "data-id": t.id, "data-prob": t.prob },
          tok(t.token), el("span", { class: "v-pct", text: percent(t.prob) }), el("span", { class: "v-track" }, b));
      })))));
    this.numbers.fill(["read after", ...Array.from({ length: TOP }, (_, i) => `#${i + 1}`)],
      m.layers.map((L) => [name(L.layer), ...L.top.map((t) => el("span", {}, tok(t.token), ` ${percent(t.prob)}`))]));
  }
}
