// Downloads with byte-accurate progress, and the Cache Storage that makes a second
// visit download nothing.

/** An error the page can show as it is: `kind` is one of the protocol's error kinds. */
export class WorkerError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * GET `url` into one Uint8Array, calling onBytes(loaded) as chunks arrive.
 *
 * `expected` (the manifest's size) lets us fill one buffer of the right size instead of
 * collecting chunks and concatenating them (which would copy every byte a second time).
 * A wrong size is not judged here: the engine checks size and sha256 and names the shard.
 */
export async function fetchBytes(url, { kind, what, expected = 0, signal, onBytes } = {}) {
  let resp;
  try {
    resp = await fetch(url, { signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new WorkerError(kind, `${what}: could not download ${url} (${e.message}); check the connection`);
  }
  if (!resp.ok) {
    const hint = resp.status === 404 ? " (the file is missing on the server: copy or convert the model again)" : "";
    throw new WorkerError(kind, `${what}: the server answered ${resp.status} ${resp.statusText} for ${url}${hint}`);
  }
  const size = expected || Number(resp.headers.get("content-length")) || 1 << 16;
  let buf = new Uint8Array(size);
  let loaded = 0;
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > buf.length) {  // more than announced: grow (rare)
        const bigger = new Uint8Array(Math.max(buf.length * 2, loaded + value.length));
        bigger.set(buf.subarray(0, loaded));
        buf = bigger;
      }
      buf.set(value, loaded);
      loaded += value.length;
      onBytes?.(loaded);
    }
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new WorkerError(kind, `${what}: the download of ${url} broke off after ${loaded} bytes (${e.message})`);
  }
  return loaded === buf.length ? buf : buf.subarray(0, loaded);
}

/** Calls fn(loaded) at most every `ms` milliseconds (the caller reports the final value). */
export function throttled(fn, ms = 50) {
  let last = 0;
  return (loaded) => {
    const now = performance.now();
    if (now - last >= ms) {
      last = now;
      fn(loaded);
    }
  };
}

const CACHE_NAME = "gpt2web-shards-v1";

/**
 * Cache Storage for verified model files, keyed by their content-addressed URL.
 * Without Cache Storage (plain http on another host, private modes) it does nothing.
 */
export class FileCache {
  static async open() {
    try {
      if (self.caches) return new FileCache(await caches.open(CACHE_NAME));
    } catch (e) {
      console.warn("gpt2web: Cache Storage unavailable, models will be downloaded each visit:", e);
    }
    return new FileCache(null);
  }

  constructor(cache) {
    this.cache = cache;
  }

  async get(key) {
    if (!this.cache) return null;
    try {
      const hit = await this.cache.match(key);
      return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
    } catch {
      return null;
    }
  }

  /** Store bytes the engine has verified; a full disk only costs a download next time. */
  async put(key, bytes) {
    if (!this.cache) return;
    try {
      await this.cache.put(key, new Response(bytes, {
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
      }));
    } catch (e) {
      console.warn(`gpt2web: could not cache ${key}:`, e);
    }
  }

  async delete(key) {
    if (this.cache) await this.cache.delete(key).catch(() => false);
  }
}
