// Shared pieces of the views: elements, tables behind pictures, asking the worker.
//
// A view is drawn for one *step* (protocol.md, "Inside a step"):
//   {model, prompt, ids, index, token?, settings?}
// `ids`: the tokens generated before the step; `index`: the step's number (0 = the first
// generated token); `token`: the token chosen at that step, when there is one; `settings`:
// {temperature, top_k, top_p, seed} it was drawn with.

import { percent, setTokenText } from "../bars.js";

export { percent, setTokenText };

/** document.createElement with properties, attributes and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k in node && !k.includes("-")) node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** A token label in a <code>, spaces marked as on the chips. */
export function tok(label, cls = "v-tok") {
  const c = el("code", { class: cls });
  setTokenText(c, label);
  return c;
}

/** A number with a fixed number of significant digits, for tables. */
export function num(x, digits = 4) {
  if (x === 0) return "0";
  return Math.abs(x) >= 1e-3 ? String(Number(x.toPrecision(digits))) : x.toExponential(digits - 1);
}

/**
 * The accessible table behind a view's picture: caption = the view's name. It is in the
 * accessibility tree at all times; a "Show the numbers" button puts it on screen too.
 */
export class NumbersTable {
  constructor(caption) {
    this.table = el("table", { class: "v-table v-hidden-table" });
    this.caption = el("caption", { text: caption });
    this.toggle = el("button", { type: "button", class: "v-link", text: "Show the numbers", "aria-expanded": "false" });
    this.toggle.addEventListener("click", () => {
      const hidden = this.table.classList.toggle("v-hidden-table");
      this.toggle.textContent = hidden ? "Show the numbers" : "Hide the numbers";
      this.toggle.setAttribute("aria-expanded", String(!hidden));
    });
    this.element = el("div", { class: "v-numbers" }, this.toggle, this.table);
  }

  /** headers: [text]; rows: [[cell text or Node]]. */
  fill(headers, rows, caption = null) {
    if (caption) this.caption.textContent = caption;
    const head = el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h }))));
    const body = el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c, i) => {
      const cell = el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {});
      cell.append(c instanceof Node ? c : String(c));
      return cell;
    }))));
    this.table.replaceChildren(this.caption, head, body);
  }
}

/**
 * Asks the worker for one view of one step; only the latest answer is drawn.
 * `client`: the page's GPT2Client. `draw(answer)` / `fail(error)` are called for the
 * latest request only.
 */
export class Asker {
  constructor(client, draw, fail) {
    this.client = client;
    this.draw = draw;
    this.fail = fail;
    this.latest = null;
  }

  ask(message) {
    const id = this.client.send(message, (m) => {
      if (m.type === "progress" || id !== this.latest) return;
      if (m.type === "error") this.fail(m);
      else this.draw(m);
    });
    this.latest = id;
    return id;
  }

  cancel() { this.latest = null; }
}

/** A heading, an explanation and a place for a problem, common to every view. */
export function viewFrame(title, sentence) {
  const status = el("p", { class: "v-status", role: "status" });
  const error = el("p", { class: "v-error", role: "alert", hidden: true });
  const body = el("div", { class: "v-body" });
  const element = el("section", { class: "v-view", "aria-label": title },
    el("p", { class: "v-lede", text: sentence }), status, error, body);
  return {
    element, body, status,
    showError(m) { error.hidden = false; error.textContent = m.message; status.textContent = ""; },
    clearError() { error.hidden = true; error.textContent = ""; },
  };
}

/** The step's context in words: "after «…the last words»". */
export function contextLabel(tokens, n = 6) {
  const tail = tokens.slice(-n).map((t) => t.token).join("");
  return (tokens.length > n ? "…" : "") + tail;
}
