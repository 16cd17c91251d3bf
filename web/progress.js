// The "Loading" list: one row with a <progress> for the Python runtime, the vocabulary,
// and each shard of the model being loaded, fed by the worker's progress messages.

import { t } from "./i18n.js";

export function formatBytes(n) {
  if (n == null) return "?";
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)} kB`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
}

export class LoadView {
  constructor(list, details) {
    this.list = list;
    this.details = details;
    this.summaryEl = details.querySelector("summary");
    this.rows = new Map();  // key -> {li, bar, amount}
    this.cachedShards = 0;
  }

  row(key, label) {
    let row = this.rows.get(key);
    if (!row) {
      const li = document.createElement("li");
      li.className = "load-row";
      li.dataset.key = key;
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = label;
      const bar = document.createElement("progress");
      bar.setAttribute("aria-label", label);
      const amount = document.createElement("span");
      amount.className = "amount";
      li.append(what, bar, amount);
      this.list.append(li);
      row = { li, bar, amount };
      this.rows.set(key, row);
    }
    return row;
  }

  /** A new model: forget other models' shard rows, keep runtime and vocabulary. */
  start(name) {
    for (const [key, row] of this.rows) {
      if (key.startsWith("shard:") && !key.startsWith(`shard:${name}:`)) {
        row.li.remove();
        this.rows.delete(key);
      }
    }
    this.model = name;
    this.details.open = true;
    this.summaryEl.textContent = t("load.loading", { model: name });
  }

  update(m) {
    if (m.phase === "runtime") {
      const row = this.row("runtime", t("load.runtime"));
      row.bar.max = m.total;
      row.bar.value = m.loaded;
      row.amount.textContent = m.loaded >= m.total ? t("load.ready") : `${m.file}… (${m.loaded}/${m.total})`;
      row.li.classList.toggle("complete", m.loaded >= m.total);
    } else if (m.phase === "tokenizer") {
      const row = this.row("tokenizer", t("load.vocabulary", { file: m.file }));
      if (m.total) {
        row.bar.max = m.total;
        row.bar.value = m.loaded;
      } else {
        row.bar.removeAttribute("value");  // size unknown until done: indeterminate
      }
      row.amount.textContent = formatBytes(m.loaded) + (m.cached ? t("w.cached") : "");
      row.li.classList.toggle("complete", Boolean(m.total));
    } else if (m.phase === "shard") {
      const row = this.row(`shard:${this.model}:${m.index}`, t("load.shard", { n: m.index + 1, of: m.shards, file: m.file }));
      row.bar.max = m.total;
      row.bar.value = Math.min(m.loaded, m.total);
      row.amount.textContent = `${formatBytes(m.loaded)} / ${formatBytes(m.total)}${m.cached ? t("w.cached") : ""}`;
      row.li.classList.toggle("complete", m.loaded >= m.total);
      row.li.dataset.cached = m.cached ? "true" : "false";
    }
  }

  summary(m, name) {
    if (m.phase === "runtime") return t("w.startingPython", m) + "…";
    if (m.phase === "tokenizer") return t("load.vocabularyBytes", { bytes: formatBytes(m.loaded) });
    if (m.phase === "shard") {
      return t("load.shardSummary", { model: name, n: m.index + 1, of: m.shards, a: formatBytes(m.model_loaded),
        b: formatBytes(m.model_total) }) + (m.cached ? t("w.cached") : "") + "…";
    }
    if (m.phase === "prepare") return t("load.preparing", { model: name });
    return t("status.loading", { model: name });
  }

  finish(name, ms) {
    const shards = [...this.rows].filter(([k]) => k.startsWith(`shard:${name}:`)).map(([, r]) => r);
    const cached = shards.filter((r) => r.li.dataset.cached === "true").length;
    this.summaryEl.textContent = t("load.loaded", { model: name, n: shards.length }) +
      (cached === shards.length && shards.length ? t("load.allCached") : "") +
      t("load.seconds", { s: (ms / 1000).toFixed(1) });
    this.details.open = false;
  }

  fail(name) {
    this.summaryEl.textContent = t("load.failed", { model: name });
    this.details.open = true;
  }
}
