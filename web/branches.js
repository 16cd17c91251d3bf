// Drawing the branches of a run: a small tree (switch between them) and two branches side
// by side from where they part, each token with its probability under the model.

import { BranchTree } from "./tree.js";
import { percent, setTokenText } from "./bars.js";
import { t } from "./i18n.js";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function tokenCode(label) {
  const code = el("code", "tok");
  setTokenText(code, label);
  return code;
}

/**
 * The tree into `list` (an <ol>): one item per branch, children nested under their parent.
 * `on.show(b)` switches to branch b, `on.compare(b)` compares it with the current one.
 */
export function drawTree(list, tree, on, { busy = false, comparing = null } = {}) {
  const item = (b) => {
    const li = el("li", "branch-item");
    li.dataset.branch = b.n;
    const show = el("button", "branch", t("branch.name", { n: b.n }));
    show.type = "button";
    show.setAttribute("aria-pressed", String(b === tree.current));
    show.disabled = busy && b !== tree.current;
    show.addEventListener("click", () => on.show(b));
    const info = el("span", "branch-info");
    if (b.parent) {
      const at = b.steps[b.fork];
      const was = b.parent.steps[b.fork];
      info.append(t("branch.from", { n: b.fork + 1 }), " ");
      if (was) info.append(tokenCode(was.token), " → ");
      if (at) info.append(tokenCode(at.token));
      info.append(" · ");
    }
    info.append(t("branch.tokens", { n: b.steps.length }));
    li.append(show, " ", info);
    if (b !== tree.current) {
      const cmp = el("button", "link compare-button", t("branch.compare"));
      cmp.type = "button";
      cmp.setAttribute("aria-label", t("branch.compareLabel", { n: b.n, m: tree.current.n }));
      cmp.setAttribute("aria-pressed", String(comparing === b));
      cmp.addEventListener("click", () => on.compare(b));
      li.append(" ", cmp);
    }
    const kids = tree.children(b);
    if (kids.length) {
      const ol = el("ol", "tree");
      ol.append(...kids.map(item));
      li.append(ol);
    }
    return li;
  };
  list.replaceChildren(item(tree.branches[0]));
}

/** Branches `a` and `b` side by side in `box`, from the first token where they differ. */
export function drawCompare(box, a, b, onClose) {
  const from = BranchTree.shared(a, b);
  const table = el("table", "compare-table");
  table.append(el("caption", null, t("compare.caption", { a: a.n, b: b.n, n: from + 1 })));
  const head = el("tr");
  head.append(el("th", null, t("compare.position")), el("th", null, t("branch.name", { n: a.n })),
    el("th", null, t("branch.name", { n: b.n })));
  for (const th of head.children) th.scope = "col";
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  const cell = (s) => {
    const td = el("td");
    if (!s) {
      td.append(el("span", "none", "—"));
      return td;
    }
    td.append(tokenCode(s.token), " ", el("span", "p", percent(s.prob)));
    td.dataset.prob = s.prob;
    td.title = t("compare.cellTitle", { p: percent(s.prob), rank: s.rank });
    return td;
  };
  for (let i = from; i < Math.max(a.steps.length, b.steps.length); i++) {
    const tr = el("tr");
    const th = el("th", null, String(i + 1));
    th.scope = "row";
    tr.append(th, cell(a.steps[i]), cell(b.steps[i]));
    body.append(tr);
  }
  table.append(body);
  const close = el("button", "link", t("compare.close"));
  close.type = "button";
  close.addEventListener("click", onClose);
  const sum = (br) => br.steps.slice(from).reduce((acc, s) => acc + Math.log(Math.max(s.prob, 1e-300)), 0);
  const note = el("p", "hint", t("compare.note", {
    a: a.n, b: b.n, pa: (sum(a) / Math.max(1, a.steps.length - from)).toFixed(2),
    pb: (sum(b) / Math.max(1, b.steps.length - from)).toFixed(2),
  }));
  box.replaceChildren(table, note, close);
  box.hidden = false;
}
