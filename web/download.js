// Downloads with byte-accurate progress, and the Cache Storage that makes a second
// visit download nothing.

/** An error the page can show as it is: `kind` is one of the protocol's error kinds. */
export class WorkerError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/**
 * sha256 of `bytes` as hex. WebCrypto where the browser offers it (off this thread, fast);
 * it does only in a secure context (https or localhost). A page served over plain http from
 * another machine, e.g. a classroom demo on a LAN, has none: there the hash is computed here.
 */
export async function sha256Hex(bytes) {
  const digest = globalThis.crypto?.subtle
    ? new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))
    : sha256(bytes);
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- SHA-256 (FIPS 180-4)

// Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64
// primes; initial hash: the same for the square roots of the first 8 (tests/test_startup.py
// checks the digests against Python's hashlib).
const PRIMES = [];
for (let n = 2; PRIMES.length < 64; n++) {
  if (PRIMES.every((p) => n % p)) PRIMES.push(n);
}
const frac32 = (x) => Math.floor((x - Math.floor(x)) * 2 ** 32) >>> 0;
const K = Uint32Array.from(PRIMES, (p) => frac32(Math.cbrt(p)));
const H0 = Uint32Array.from(PRIMES.slice(0, 8), (p) => frac32(Math.sqrt(p)));

/** Fold the 64-byte blocks of `data` (from `off` to `end`) into the state `h`. */
function compress(h, w, data, off, end) {
  for (; off < end; off += 64) {
    for (let t = 0; t < 16; t++) {
      const i = off + 4 * t;
      w[t] = (data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3];
    }
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15], b = w[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }
}

/** SHA-256 of a Uint8Array, as 32 bytes. */
export function sha256(bytes) {
  const h = H0.slice(), w = new Uint32Array(64);
  const n = bytes.length, whole = n - (n % 64);
  compress(h, w, bytes, 0, whole);
  // The rest, a 1 bit, zeros, and the length in bits as a 64-bit big-endian number.
  const tail = new Uint8Array(n % 64 < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole));
  tail[n % 64] = 0x80;
  const view = new DataView(tail.buffer);
  view.setUint32(tail.length - 8, Math.floor(n / 2 ** 29));
  view.setUint32(tail.length - 4, (n % 2 ** 29) * 8);
  compress(h, w, tail, 0, tail.length);
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(4 * i, v));
  return out;
}

// Downloads that fail. A network error, a server error (5xx, 408, 429), a stall (no byte for
// STALL_MS) or a connection cut mid-stream is retried, up to RETRIES times in a row without
// progress, after a pause that doubles (RETRY_MS, ...); a download cut after some bytes resumes
// where it stopped with a Range request (If-Range: the first answer's ETag, so that a file changed
// meanwhile restarts from the beginning instead of mixing two versions). A missing file (404,
// 410, 403) is not retried, nor a file shorter than the manifest says: retrying would not help.
// Messages name the file (`what`) and its URL.
export const RETRIES = 3;
export const RETRY_MS = 500;
export const STALL_MS = 15_000;

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Why an attempt ended early, where trying again may help. */
class Interrupted extends Error {}

const pause = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => {
    clearTimeout(timer);
    reject(signal.reason ?? new DOMException("aborted", "AbortError"));
  }, { once: true });
});

/**
 * GET `url` into one Uint8Array, calling onBytes(loaded) as chunks arrive.
 *
 * `expected` (the manifest's size) lets us fill one buffer of the right size instead of
 * collecting chunks and concatenating them (which would copy every byte a second time), and
 * tells a cut-off download from a complete one. A wrong sha256 is not judged here: the engine
 * checks size and hash and names the shard. `cache`: the fetch cache mode ("reload" skips the
 * browser's HTTP cache: a second try after a corrupt copy).
 */
export async function fetchBytes(url, { kind, what, expected = 0, signal, onBytes, cache } = {}) {
  let buf = new Uint8Array(expected || 1 << 16);
  let loaded = 0;
  let validator = null;  // ETag (or Last-Modified) of the first answer: for If-Range
  let total = expected || null;  // the file's size, once known
  let failures = 0;
  for (;;) {
    const before = loaded;
    try {
      const resp = await attempt();
      const part = resp.status === 206;
      if (!part) loaded = 0;  // a full answer (first try, or the server ignored the range)
      validator ??= resp.headers.get("etag") || resp.headers.get("last-modified");
      total = fileSize(resp, part) ?? total;
      if (total && total > buf.length) buf = grow(buf, total, loaded, true);
      await readBody(resp);
      if (expected && loaded < expected && total === loaded) {
        throw new WorkerError(kind, `${what}: the server sent ${loaded} bytes of ${url}, the manifest says ` +
          `${expected}: the file on the server is truncated (copy or convert the model again)`);
      }
      if (total && loaded < total) throw new Interrupted(`the connection closed after ${loaded} of ${total} bytes`);
      return loaded === buf.length ? buf : buf.subarray(0, loaded);
    } catch (e) {
      if (e.name === "AbortError" && signal?.aborted) throw e;
      if (e instanceof WorkerError) throw e;
      failures = loaded > before ? 1 : failures + 1;  // progress resets the count
      if (failures > RETRIES) {
        const after = failures > 1 ? ` (${failures} tries)` : "";
        const where = loaded ? `the download of ${url} broke off after ${loaded} bytes` : `could not download ${url}`;
        throw new WorkerError(kind, `${what}: ${where} (${e.message})${after}; check the connection and reload`);
      }
      console.info(`gpt2web: ${what}: ${e.message}; trying again${loaded ? ` from byte ${loaded}` : ""}`);
      await pause(RETRY_MS * 2 ** (failures - 1), signal);
    }
  }

  /** One request: from byte `loaded` on if some have arrived. Throws Interrupted or WorkerError. */
  async function attempt() {
    const headers = {};
    if (loaded > 0) {
      headers.Range = `bytes=${loaded}-`;
      if (validator) headers["If-Range"] = validator;
    }
    let resp;
    try {
      resp = await fetch(url, { signal, headers, cache: loaded > 0 ? "no-store" : cache });
    } catch (e) {
      if (e.name === "AbortError" && signal?.aborted) throw e;
      throw new Interrupted(e.message);
    }
    if (resp.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(resp.headers.get("content-range") ?? "");
      if (!range || Number(range[1]) !== loaded) {
        resp.body?.cancel().catch(() => {});
        loaded = 0;  // an answer we cannot splice in: start again from the beginning
        throw new Interrupted(`the server answered a range request with ${resp.headers.get("content-range")}`);
      }
      return resp;
    }
    if (resp.ok) return resp;
    resp.body?.cancel().catch(() => {});
    if (RETRY_STATUS.has(resp.status)) throw new Interrupted(`the server answered ${resp.status} ${resp.statusText}`);
    const hint = resp.status === 404 || resp.status === 410
      ? " (the file is missing on the server: copy or convert the model again)" : "";
    throw new WorkerError(kind, `${what}: the server answered ${resp.status} ${resp.statusText} for ${url}${hint}`);
  }

  /** Append the body to `buf` from `loaded` on; a stall of STALL_MS is an interruption. */
  async function readBody(resp) {
    const reader = resp.body.getReader();
    for (;;) {
      let timer;
      const stalled = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Interrupted(`no data for ${STALL_MS / 1000} s`)), STALL_MS);
      });
      let chunk;
      try {
        chunk = await Promise.race([reader.read(), stalled]);
      } catch (e) {
        reader.cancel().catch(() => {});
        if (e instanceof Interrupted || (e.name === "AbortError" && signal?.aborted)) throw e;
        throw new Interrupted(e.message);
      } finally {
        clearTimeout(timer);
      }
      if (chunk.done) return;
      const { value } = chunk;
      if (expected && loaded + value.length > expected) {
        reader.cancel().catch(() => {});
        throw new WorkerError(kind, `${what}: ${url} is larger than the ${expected} bytes the manifest says ` +
          "(the file on the server is not this model's: copy or convert the model again)");
      }
      if (loaded + value.length > buf.length) buf = grow(buf, loaded + value.length, loaded);
      buf.set(value, loaded);
      loaded += value.length;
      onBytes?.(loaded);
    }
  }
}

/** The whole file's size from a response: Content-Range's total, or a full answer's length. */
function fileSize(resp, part) {
  if (part) {
    const total = /\/(\d+)$/.exec(resp.headers.get("content-range") ?? "");
    return total ? Number(total[1]) : null;
  }
  // (A Content-Encoding makes Content-Length the compressed size: no use then.)
  if (resp.headers.get("content-encoding")) return null;
  const n = Number(resp.headers.get("content-length"));
  return n > 0 ? n : null;
}

/** A buffer of `size` bytes (or more, doubling, unless `exact`) holding buf's first `keep` bytes. */
function grow(buf, size, keep, exact = false) {
  const bigger = new Uint8Array(exact ? size : Math.max(size, Math.min(buf.length * 2, 2 ** 31)));
  bigger.set(buf.subarray(0, keep));
  return bigger;
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

/** The Cache Storage of verified model files (offline.js shows and clears it). */
export const SHARD_CACHE = "gpt2web-shards-v1";

/**
 * Cache Storage for verified model files, keyed by their content-addressed URL.
 * Without Cache Storage (plain http on another host, private modes) it does nothing.
 */
export class FileCache {
  static async open() {
    try {
      if (self.caches) return new FileCache(await caches.open(SHARD_CACHE));
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
      if (e?.name === "QuotaExceededError") {
        // The browser's storage for this site is full: carry on without the cache.
        console.warn("gpt2web: the browser's storage for this site is full: models are not kept " +
          "and will be downloaded again next visit");
        this.cache = null;
        return;
      }
      console.warn(`gpt2web: could not cache ${key}:`, e);
    }
  }

  async delete(key) {
    if (this.cache) await this.cache.delete(key).catch(() => false);
  }
}
