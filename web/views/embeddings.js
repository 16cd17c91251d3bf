// Embeddings: a token's nearest tokens by the cosine of their rows of wte, and a 2-D map
// (the first two principal components of the rows shown) of the context's tokens and
// their neighbours.

import { Asker, NumbersTable, el, num, svg, tok, viewFrame } from "./common.js";

const TOP = 10;
const W = 420;
const H = 300;

export class EmbeddingsView {
  static title = "Embeddings";

  constructor({ client }) {
    this.frame = viewFrame(EmbeddingsView.title,
      "Every token enters the model as a row of numbers, its embedding. Tokens the model treats alike " +
      "get rows that point the same way: their cosine similarity is near 1.");
    this.element = this.frame.element;
    this.element.classList.add("v-embeddings");
    this.asker = new Asker(client, (m) => this.draw(m), (m) => this.frame.showError(m));
    this.picker = el("div", { class: "v-achips", role: "group", "aria-label": "the token whose neighbours are shown" });
    this.list = el("ol", { class: "v-nlist", "aria-hidden": "true" });
    this.map = svg("svg", { class: "v-map", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "map of tokens (not drawn yet)" });
    this.mapNote = el("p", { class: "v-hint" });
    this.numbers = new NumbersTable(EmbeddingsView.title);
    this.mapNumbers = new NumbersTable(`${EmbeddingsView.title}: the map`);
    this.frame.body.append(this.picker,
      el("div", { class: "v-ecols" }, el("div", {}, this.list, this.numbers.element),
        el("div", {}, this.map, this.mapNote, this.mapNumbers.element)));
  }

  show(step) {
    if (!this.step || step.prompt !== this.step.prompt || step.ids.length !== this.step.ids.length) this.tokenId = null;
    this.step = step;
    this.request();
  }

  request() {
    const { model, prompt, ids } = this.step;
    this.asker.ask({ type: "explain", view: "embeddings", model, prompt, ids, token_id: this.tokenId ?? null, top: TOP });
  }

  draw(m) {
    this.frame.clearError();
    this.element.dataset.draws = Number(this.element.dataset.draws ?? 0) + 1;
    this.tokenId = m.token.id;
    const seen = new Set();
    const context = m.tokens.filter((t) => !seen.has(t.id) && seen.add(t.id));
    this.picker.replaceChildren(...context.map((t) => {
      const b = el("button", { type: "button", class: "v-achip", "aria-pressed": String(t.id === m.token.id),
        "aria-label": `neighbours of ${t.token}` }, tok(t.token, "v-tok-plain"));
      b.addEventListener("click", () => { this.tokenId = t.id; this.request(); });
      return b;
    }));
    this.frame.status.replaceChildren("Nearest to ", tok(m.token.token), ` (id ${m.token.id}):`);
    this.list.replaceChildren(...m.neighbors.map((n) => {
      const b = el("span", { class: "v-bar v-model" });
      b.style.width = `${Math.max(0, n.cosine) * 100}%`;
      return el("li", { class: "v-nrow", "data-id": n.id, "data-cos": n.cosine }, tok(n.token), el("span", { class: "v-track" }, b),
        el("span", { class: "v-pct", text: n.cosine.toFixed(3) }));
    }));
    this.numbers.fill(["#", "token", "id", "cosine"], m.neighbors.map((n, i) => [i + 1, tok(n.token), n.id, n.cosine.toFixed(4)]),
      `${EmbeddingsView.title}: nearest to ${m.token.token}`);
    this.drawMap(m);
  }

  drawMap(m) {
    const pts = m.points;
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    const pad = 30;
    const sx = (x) => pad + ((x - Math.min(...xs)) / ((Math.max(...xs) - Math.min(...xs)) || 1)) * (W - 2 * pad);
    const sy = (y) => H - pad - ((y - Math.min(...ys)) / ((Math.max(...ys) - Math.min(...ys)) || 1)) * (H - 2 * pad);
    const where = new Map(pts.map((p) => [p.id, [sx(p.x), sy(p.y)]]));
    const lines = pts.filter((p) => p.of != null).map((p) => {
      const [x1, y1] = where.get(p.of);
      const [x2, y2] = where.get(p.id);
      return svg("line", { x1, y1, x2, y2, class: "v-mline" });
    });
    const dots = pts.map((p) => {
      const [x, y] = where.get(p.id);
      const cls = p.id === m.token.id ? "v-mdot v-mpick" : p.of == null ? "v-mdot v-mctx" : "v-mdot";
      const right = x > W / 2;  // labels on the right half end at their dot: none leaves the map
      const label = svg("text", { x: right ? x - 5 : x + 5, y: y - 4, "text-anchor": right ? "end" : "start",
        class: p.of == null ? "v-mlabel v-mctx" : "v-mlabel" });
      label.textContent = p.token.replace(/ /g, "·");
      return svg("g", {}, svg("circle", { cx: x, cy: y, r: p.of == null ? 4.5 : 3, class: cls }), label);
    });
    this.map.replaceChildren(...lines, ...dots);
    this.map.setAttribute("aria-label", `map of ${pts.length} tokens on two axes`);
    this.mapNote.textContent = `The context's tokens (bold) and ${pts.length - pts.filter((p) => p.of == null).length} ` +
      `neighbours, projected on the two directions along which their embeddings vary most ` +
      `(${(100 * (m.explained[0] + m.explained[1])).toFixed(0)}% of their spread). A dot marks a space.`;
    this.mapNumbers.fill(["token", "x", "y", "neighbour of"],
      pts.map((p) => [tok(p.token), num(p.x, 3), num(p.y, 3), p.of == null ? "(context)" : pts.find((q) => q.id === p.of)?.token ?? ""]));
  }
}
