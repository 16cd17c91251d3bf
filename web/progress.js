// The "Loading" list: one row with a <progress> for the Python runtime, the vocabulary,
// and each shard of the model being loaded, fed by the worker's progress messages.

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
    this.summaryEl.textContent = `Loading ${name}`;
  }

  update(m) {
    if (m.phase === "runtime") {
      const row = this.row("runtime", "Python runtime");
      row.bar.max = m.total;
      row.bar.value = m.loaded;
      row.amount.textContent = m.loaded >= m.total ? "ready" : `${m.file}… (${m.loaded}/${m.total})`;
      row.li.classList.toggle("complete", m.loaded >= m.total);
    } else if (m.phase === "tokenizer") {
      const row = this.row("tokenizer", `Vocabulary (${m.file})`);
      if (m.total) {
        row.bar.max = m.total;
        row.bar.value = m.loaded;
      } else {
        row.bar.removeAttribute("value");  // size unknown until done: indeterminate
      }
      row.amount.textContent = formatBytes(m.loaded) + (m.cached ? " (cached)" : "");
      row.li.classList.toggle("complete", Boolean(m.total));
    } else if (m.phase === "shard") {
      const row = this.row(`shard:${this.model}:${m.index}`, `Shard ${m.index + 1}/${m.shards}: ${m.file}`);
      row.bar.max = m.total;
      row.bar.value = Math.min(m.loaded, m.total);
      row.amount.textContent = `${formatBytes(m.loaded)} / ${formatBytes(m.total)}${m.cached ? " (cached)" : ""}`;
      row.li.classList.toggle("complete", m.loaded >= m.total);
      row.li.dataset.cached = m.cached ? "true" : "false";
    }
  }

  summary(m, name) {
    if (m.phase === "runtime") return `Starting Python: ${m.file} (${m.loaded}/${m.total})…`;
    if (m.phase === "tokenizer") return `Loading the vocabulary: ${formatBytes(m.loaded)}…`;
    if (m.phase === "shard") {
      return `Loading ${name}: shard ${m.index + 1} of ${m.shards}, ` +
        `${formatBytes(m.model_loaded)} of ${formatBytes(m.model_total)}${m.cached ? " (from cache)" : ""}…`;
    }
    if (m.phase === "prepare") return `Preparing ${name}…`;
    return `Loading ${name}…`;
  }

  finish(name, ms) {
    const shards = [...this.rows].filter(([k]) => k.startsWith(`shard:${name}:`)).map(([, r]) => r);
    const cached = shards.filter((r) => r.li.dataset.cached === "true").length;
    this.summaryEl.textContent = `Loaded ${name}: ${shards.length} shards` +
      (cached === shards.length && shards.length ? ", all from this browser's cache" : "") +
      `, ${(ms / 1000).toFixed(1)} s`;
    this.details.open = false;
  }

  fail(name) {
    this.summaryEl.textContent = `Loading ${name} failed`;
    this.details.open = true;
  }
}
