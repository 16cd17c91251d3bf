// Surprise: every token of a text coloured by how likely the model found it, given what
// came before (its probability and its rank), the text's perplexity and its least expected
// tokens. Any text can be pasted and scored (the worker's `score`).

import { Asker, NumbersTable, el, percent, tok, viewFrame } from "./common.js";

export const BUCKETS = [
  { name: "top-1", max: 1 }, { name: "top-10", max: 10 }, { name: "top-100", max: 100 }, { name: "rest", max: Infinity },
];
export const bucketOf = (rank) => BUCKETS.findIndex((b) => rank <= b.max);

export class SurpriseView {
  static title = "Surprise";

  constructor({ client }) {
    this.frame = viewFrame(SurpriseView.title,
      "How expected was each token, given the ones before it? The rank says where it stood among the " +
      "model's candidates (1 = its favourite). Perplexity is the average surprise as a number of " +
      "equally likely choices: lower means the model found the text easier to predict.");
    this.element = this.frame.element;
    this.element.classList.add("v-surprise");
    this.asker = new Asker(client, (m) => this.draw(m), (m) => this.frame.showError(m));
    const id = `v-sc-${Math.random().toString(36).slice(2, 8)}`;
    this.text = el("textarea", { id, rows: 3, spellcheck: false, class: "v-text" });
    this.button = el("button", { type: "button", class: "v-primary", text: "Score this text" });
    this.button.addEventListener("click", () => this.request());
    this.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); e.stopPropagation(); this.request(); }
    });
    this.legend = el("div", { class: "v-legend", "aria-hidden": "true" },
      ...BUCKETS.map((b, i) => el("span", {}, el("i", { class: `v-sw v-b${i}` }), b.name === "rest" ? "rank > 100" : b.name)));
    this.out = el("p", { class: "v-scored", "aria-hidden": "true" });
    this.summary = el("p", { class: "v-summary" });
    this.numbers = new NumbersTable(SurpriseView.title);
    this.frame.body.append(el("label", { for: id, text: "Text to score (paste any text)" }), this.text,
      el("div", { class: "v-controls" }, this.button), this.summary, this.legend, this.out, this.numbers.element);
  }

  /** `step.text`: the text so far (the prompt and what was written), scored at once. */
  show(step) {
    this.step = step;
    const text = step.text ?? step.prompt;
    if (text && text !== this.scored) {
      this.text.value = text;
      this.request();
    }
  }

  request() {
    const text = this.text.value;
    if (text === "") {
      this.frame.showError({ message: "The text is empty: type or paste some text to score." });
      return;
    }
    this.scored = text;
    this.frame.status.textContent = "Scoring…";
    this.asker.ask({ type: "score", model: this.step.model, text });
  }

  draw(m) {
    this.frame.clearError();
    this.element.dataset.draws = Number(this.element.dataset.draws ?? 0) + 1;
    this.frame.status.textContent = "";
    const least = [...m.tokens].map((t, i) => ({ ...t, i })).sort((a, b) => a.prob - b.prob).slice(0, 5);
    this.summary.replaceChildren(`${m.tokens.length} tokens, perplexity `, el("strong", { text: m.perplexity.toFixed(2) }),
      ". Least expected: ", ...least.flatMap((t, k) => [k ? ", " : "", tok(t.token), ` (${percent(t.prob)}, rank ${t.rank})`]), ".");
    this.out.replaceChildren(...m.tokens.map((t, i) => {
      const s = el("span", { class: `v-st v-b${bucketOf(t.rank)}`, title: `token ${i + 1}: ${percent(t.prob)}, rank ${t.rank}`,
        "data-id": t.id, "data-prob": t.prob, "data-rank": t.rank });
      s.textContent = t.token;
      return s;
    }));
    this.numbers.fill(["#", "token", "probability", "rank", "bucket"],
      m.tokens.map((t, i) => [i + 1, tok(t.token), percent(t.prob), t.rank, BUCKETS[bucketOf(t.rank)].name]));
  }
}
