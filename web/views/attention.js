// Attention: for one position of the step's context, how much it attends to every earlier
// token, for a chosen layer and head (or the mean over heads); and the whole prompt as a
// heatmap (row i: position i; column j: how much i attends to j).

import { Asker, NumbersTable, el, percent, tok, viewFrame } from "./common.js";

export class AttentionView {
  static title = "Attention";

  constructor({ client }) {
    this.frame = viewFrame(AttentionView.title,
      "A head is one of the attention patterns a layer computes side by side: each position spreads " +
      "a total weight of 1 over itself and the tokens before it, and takes in what they carry in " +
      "those proportions.");
    this.element = this.frame.element;
    this.element.classList.add("v-attention");
    this.asker = new Asker(client, (m) => this.draw(m), (m) => this.frame.showError(m));
    this.step = null;
    this.query = null;  // the position whose row is shown; null: the step's (the last)
    const uid = Math.random().toString(36).slice(2, 8);
    this.layer = el("select", { id: `v-a-layer-${uid}` });
    this.head = el("select", { id: `v-a-head-${uid}` });
    this.layer.addEventListener("change", () => this.request());
    this.head.addEventListener("change", () => this.request());
    this.chips = el("div", { class: "v-achips", role: "group", "aria-label": "positions: pick the one whose attention is shown" });
    this.heat = el("canvas", { class: "v-heat", role: "img", "aria-label": "attention heatmap (not drawn yet)" });
    this.heatNote = el("p", { class: "v-hint" });
    this.numbers = new NumbersTable(AttentionView.title);
    this.frame.body.append(
      el("div", { class: "v-controls" },
        el("div", { class: "v-field" }, el("label", { for: this.layer.id, text: "Layer" }), this.layer),
        el("div", { class: "v-field" }, el("label", { for: this.head.id, text: "Head" }), this.head)),
      this.chips, el("div", { class: "v-heatwrap" }, this.heat, this.heatNote), this.numbers.element);
    this.heat.addEventListener("click", (e) => {
      const r = this.heat.getBoundingClientRect();
      const n = this.last?.tokens.length ?? 0;
      const i = Math.floor(((e.clientY - r.top) / r.height) * n);
      if (i >= 0 && i < n) this.pick(i);
    });
  }

  fillSelects(nLayer, nHead) {
    if (this.layer.options.length !== nLayer) {
      this.layer.replaceChildren(...Array.from({ length: nLayer }, (_, i) => new Option(`layer ${i}`, String(i))));
      this.layer.value = String(nLayer - 1);
    }
    if (this.head.options.length !== nHead + 1) {
      this.head.replaceChildren(new Option("mean over heads", ""),
        ...Array.from({ length: nHead }, (_, i) => new Option(`head ${i}`, String(i))));
    }
  }

  show(step) {
    if (!this.step || step.prompt !== this.step.prompt || step.ids.length !== this.step.ids.length) this.query = null;
    this.step = step;
    if (step.config) this.fillSelects(step.config.n_layer, step.config.n_head);
    this.request();
  }

  request() {
    if (!this.step) return;
    const { model, prompt, ids } = this.step;
    const layer = this.layer.value === "" ? null : Number(this.layer.value);  // null: the last layer
    const head = this.head.value === "" ? null : Number(this.head.value);
    this.asker.ask({ type: "explain", view: "attention", model, prompt, ids, layer, head });
  }

  pick(i) {
    this.query = i;
    if (this.last) this.draw(this.last);
    this.chips.querySelector(`[data-pos="${i}"]`)?.focus();
  }

  draw(m) {
    this.frame.clearError();
    this.element.dataset.draws = Number(this.element.dataset.draws ?? 0) + 1;
    this.fillSelects(m.n_layer, m.n_head);
    if (this.layer.value === "" || Number(this.layer.value) !== m.layer) this.layer.value = String(m.layer);
    this.last = m;
    const n = m.tokens.length;
    const q = this.query == null || this.query >= n ? n - 1 : this.query;
    const row = m.weights[q];
    const who = m.head == null ? "the mean over heads" : `head ${m.head}`;
    this.frame.status.textContent = `Layer ${m.layer}, ${who}: position ${q + 1} (“${m.tokens[q].token}”) ` +
      `attends most to “${m.tokens[row.indexOf(Math.max(...row))].token}”.`;
    const max = Math.max(...row);
    this.chips.replaceChildren(...m.tokens.map((t, j) => {
      const w = j <= q ? row[j] : 0;
      const b = el("button", { type: "button", class: `v-achip${j === q ? " v-query" : ""}${j > q ? " v-later" : ""}`,
        "aria-pressed": String(j === q), "aria-label": `position ${j + 1}, ${t.token}` + (j <= q ? `, weight ${percent(w)}` : ""),
        title: j <= q ? `${percent(w)} of position ${q + 1}'s attention` : "later: not visible from here" }, tok(t.token, "v-tok-plain"),
        el("span", { class: "v-aw", "aria-hidden": "true", text: j <= q ? percent(w) : "–" }));
      b.dataset.pos = j;
      b.dataset.w = j <= q ? w : 0;
      b.style.setProperty("--w", String(max > 0 ? w / max : 0));
      if (max > 0 && w / max > 0.55) b.classList.add("v-dark");  // light text on the darkest chips
      b.addEventListener("click", () => this.pick(j));
      b.addEventListener("keydown", (e) => {
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          e.preventDefault();
          this.pick(Math.max(0, Math.min(n - 1, j + (e.key === "ArrowRight" ? 1 : -1))));
        }
      });
      return b;
    }));
    this.drawHeat(m, q);
    this.numbers.fill(["position", "token", `weight from position ${q + 1}`],
      row.map((w, j) => [j + 1, tok(m.tokens[j].token), percent(w)]),
      `${AttentionView.title}: layer ${m.layer}, ${who}, position ${q + 1}`);
  }

  drawHeat(m, q) {
    const n = m.tokens.length;
    const cell = Math.max(2, Math.min(18, Math.floor(320 / n)));
    const size = cell * n;
    const ratio = window.devicePixelRatio || 1;
    this.heat.width = size * ratio;
    this.heat.height = size * ratio;
    this.heat.style.width = `${size}px`;
    this.heat.style.height = `${size}px`;
    const ctx = this.heat.getContext("2d");
    ctx.scale(ratio, ratio);
    const css = getComputedStyle(this.element);
    const color = css.getPropertyValue("--v-heat").trim() || "47, 95, 208";
    ctx.fillStyle = css.getPropertyValue("--v-heat-bg").trim() || "#f6f7f9";
    ctx.fillRect(0, 0, size, size);
    m.weights.forEach((row, i) => row.forEach((w, j) => {
      ctx.fillStyle = `rgba(${color}, ${Math.sqrt(w).toFixed(3)})`;  // sqrt: small weights stay visible
      ctx.fillRect(j * cell, i * cell, cell, cell);
    }));
    ctx.strokeStyle = css.getPropertyValue("--v-heat-line").trim() || "#b07f08";
    ctx.lineWidth = 2;
    ctx.strokeRect(1, q * cell + 1, size - 2, Math.max(1, cell - 2));
    this.heat.setAttribute("aria-label", `heatmap of ${n} positions: row i is how much position i attends to each earlier position`);
    this.heatNote.textContent = `The whole context: row i is position i, column j how much it attends to j ` +
      `(darker = more; above the diagonal is the future, never seen). The outlined row is position ${q + 1}; click a row to pick it.`;
  }
}
