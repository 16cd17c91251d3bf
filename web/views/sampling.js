// Sampling: how one step's logits become the distribution a token is drawn from.
// Moving a setting asks the worker again; it re-draws from the step's kept logits, no new
// forward pass (protocol.md, view "sampling").

import { Asker, NumbersTable, contextLabel, el, num, percent, tok, viewFrame } from "./common.js";

const ROWS = 30;

export class SamplingView {
  static title = "Sampling";

  constructor({ client }) {
    this.frame = viewFrame(SamplingView.title,
      "The model gives every token a probability. Then, in this order: the logits are divided by the " +
      "temperature, top-k keeps the k likeliest tokens, top-p keeps the smallest set of them whose " +
      "probability reaches p, what is kept is rescaled to sum to 1, and one draw picks a token.");
    this.element = this.frame.element;
    this.element.classList.add("v-sampling");
    this.asker = new Asker(client, (m) => this.draw(m), (m) => this.frame.showError(m));
    this.step = null;
    this.counts = null;

    const input = (name, label, attrs) => {
      const id = `v-s-${name}-${Math.random().toString(36).slice(2, 8)}`;
      const range = el("input", { type: "range", id, ...attrs, "aria-describedby": `${id}-out` });
      const out = el("output", { id: `${id}-out`, for: id });
      range.addEventListener("input", () => { out.textContent = this.formatValue(name, range.value); this.request(); });
      return { range, out, field: el("div", { class: "v-field" }, el("label", { for: id, text: label }), range, out) };
    };
    this.inputs = {
      temperature: input("temperature", "Temperature", { min: 0, max: 2, step: 0.05, value: 1 }),
      top_k: input("top_k", "Top-k (0 = off)", { min: 0, max: 100, step: 1, value: 0 }),
      top_p: input("top_p", "Top-p (1 = off)", { min: 0.05, max: 1, step: 0.05, value: 1 }),
    };
    this.sampleButton = el("button", { type: "button", text: "Sample 100 times" });
    this.sampleButton.addEventListener("click", () => this.request(100));
    this.summary = el("p", { class: "v-summary" });
    this.bars = el("div", { class: "v-sbars", "aria-hidden": "true" });
    this.legend = el("div", { class: "v-legend", "aria-hidden": "true" },
      el("span", {}, el("i", { class: "v-sw v-sw-model" }), "under the model"),
      el("span", {}, el("i", { class: "v-sw v-sw-temp" }), "after temperature"),
      el("span", {}, el("i", { class: "v-sw v-sw-share" }), "share after the cut-offs (the numbers: model → share)"),
      el("span", { class: "v-legend-hist", hidden: true }, el("i", { class: "v-sw v-sw-hist" }), "drawn, of 100"),
      this.scaleNote = el("span"));
    this.numbers = new NumbersTable(SamplingView.title);
    this.frame.body.append(
      el("div", { class: "v-controls" }, ...Object.values(this.inputs).map((i) => i.field), this.sampleButton),
      this.summary, this.legend, this.bars, this.numbers.element);
  }

  formatValue(name, v) {
    if (name === "top_k") return Number(v) === 0 ? "off" : v;
    if (name === "top_p") return Number(v) >= 1 ? "off" : Number(v).toFixed(2);
    return Number(v) === 0 ? "0 (greedy)" : Number(v).toFixed(2);
  }

  /** A new step: the settings start as the step's own. */
  show(step) {
    const same = this.step && step.model === this.step.model && step.prompt === this.step.prompt &&
      step.ids.length === this.step.ids.length && step.ids.every((t, i) => t === this.step.ids[i]);
    this.step = step;
    if (!same) {
      const s = step.settings ?? {};
      const set = (name, v) => {
        const i = this.inputs[name];
        i.range.value = String(Math.min(Number(i.range.max), Math.max(Number(i.range.min), v)));
        i.out.textContent = this.formatValue(name, i.range.value);
      };
      set("temperature", s.temperature ?? 1);
      set("top_k", s.top_k ?? 0);
      set("top_p", s.top_p ?? 1);
      this.seed = s.seed ?? 1;
      this.counts = null;
    }
    this.request();
  }

  settings() {
    const v = (n) => Number(this.inputs[n].range.value);
    return { temperature: v("temperature"), top_k: v("top_k"), top_p: v("top_p"), seed: this.seed ?? 1 };
  }

  request(samples = 0) {
    if (!this.step) return;
    if (!samples) this.counts = null;
    const { model, prompt, ids } = this.step;
    this.frame.status.textContent = samples ? "Drawing 100 tokens…" : "";
    this.asker.ask({ type: "explain", view: "sampling", model, prompt, ids, top: ROWS, samples, ...this.settings() });
  }

  draw(m) {
    this.frame.clearError();
    this.element.dataset.draws = Number(this.element.dataset.draws ?? 0) + 1;
    this.last = m;
    if (m.counts) this.counts = new Map(m.counts.map((c) => [c.id, c.count]));
    const counts = this.counts;
    const cutOff = m.n_vocab - m.kept;
    this.frame.status.textContent = "";
    this.summary.replaceChildren(
      `Step ${this.step.index + 1}, after “${contextLabel(m.tokens)}”: `,
      el("strong", { text: `${m.kept.toLocaleString("en")} token${m.kept === 1 ? "" : "s"} can be drawn` }),
      m.temperature === 0 ? " (temperature 0: always the likeliest)." :
        `; the ${cutOff.toLocaleString("en")} cut off hold ${percent(m.excluded_mass)} of the model's probability ` +
        `(${percent(m.excluded_temp_mass)} after temperature).` +
        (counts ? ` Seed ${m.seed ?? this.seed}: ${[...counts.values()].reduce((a, b) => a + b, 0)} draws.` : ""));
    // One scale for every bar: the largest value shown fills the track.
    this.scale = Math.max(1e-12, ...m.rows.flatMap((r) => [r.prob, r.temp_prob, r.sample_prob,
      counts ? (counts.get(r.id) ?? 0) / 100 : 0]));
    this.scaleNote.textContent = `Bars: the longest is ${percent(this.scale)}.`;
    const rows = [];
    m.rows.forEach((r, i) => {
      rows.push(this.row(r, counts));
      if (m.top_k_cut && r.rank === m.top_k_cut && i < m.rows.length - 1) rows.push(this.cut(`top-k cut: k = ${m.top_k_cut}`));
      if (m.top_p_cut && r.rank === m.top_p_cut && i < m.rows.length - 1) {
        rows.push(this.cut(`top-p cut: the first ${m.top_p_cut} reach p = ${m.top_p}`));
      }
    });
    const rest = Math.max(0, 1 - m.shown_mass);
    rows.push(el("div", { class: "v-srest", text: `the other ${(m.n_vocab - m.rows.length).toLocaleString("en")} tokens: ` +
      `${percent(rest)} under the model` }));
    this.bars.replaceChildren(...rows);
    this.element.querySelector(".v-legend-hist").hidden = !counts;
    this.numbers.fill(
      ["rank", "token", "under the model", "after temperature", "share after cut-offs", "can be drawn",
        ...(counts ? ["drawn of 100"] : [])],
      m.rows.map((r) => [r.rank, tok(r.token), percent(r.prob), percent(r.temp_prob), percent(r.sample_prob),
        r.kept ? "yes" : "no", ...(counts ? [counts.get(r.id) ?? 0] : [])]));
  }

  row(r, counts) {
    const bar = (cls, p) => {
      const b = el("span", { class: `v-bar ${cls}` });
      b.style.width = `${Math.max(0, Math.min(1, p / this.scale)) * 100}%`;
      return el("span", { class: "v-track" }, b);
    };
    const row = el("div", { class: `v-srow${r.kept ? "" : " v-cut-off"}`, title: `id ${r.id} · ${num(r.prob)} under the model` },
      el("span", { class: "v-rank", text: String(r.rank) }), tok(r.token),
      el("span", { class: "v-bars3" }, bar("v-model", r.prob), bar("v-temp", r.temp_prob), bar("v-share", r.sample_prob),
        ...(counts ? [bar("v-hist", (counts.get(r.id) ?? 0) / 100)] : [])),
      el("span", { class: "v-pct", text: `${percent(r.prob)} → ${r.kept ? percent(r.sample_prob) : "cut off"}` }));
    Object.assign(row.dataset, { id: r.id, prob: r.prob, temp: r.temp_prob, share: r.sample_prob, kept: r.kept,
      count: counts ? counts.get(r.id) ?? 0 : "" });
    return row;
  }

  cut(text) {
    return el("div", { class: "v-cutline", text });
  }
}
