// Loads one model into the engine: manifest, vocabulary, then the shards in manifest order.
//
// Downloads do not wait for Python: the manifest, the vocabulary and the shards stream in
// while the runtime boots, and each shard is handed to the engine as soon as both it and
// Python are ready. Shards come from Cache Storage when a previous visit stored them;
// only bytes the engine has verified (size + sha256) are ever stored, so a corrupt
// download is never cached, and a cached copy that fails the check is fetched again once.

import { FileCache, WorkerError, fetchBytes, sha256Hex, throttled } from "./download.js";
import { callPython } from "./runtime.js";
import { checkDevice } from "./device.js";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// One vocabulary for every GPT-2 model: loaded into Python once per sha256.
const tokenizerLoads = new Map();

async function fetchManifest(name, url) {
  const bytes = await fetchBytes(url, { kind: "shard", what: `model "${name}"` });
  const text = new TextDecoder().decode(bytes);
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (e) {
    throw new WorkerError("shard", `${url} is not valid JSON (${e.message}): convert the model again`);
  }
  if (!Array.isArray(manifest?.shards) || typeof manifest?.tokenizer?.file !== "string") {
    throw new WorkerError("shard", `${url} is not a gpt2web manifest (no shards or tokenizer)`);
  }
  return { manifest, text };
}

/**
 * Bytes from the cache, else from the network: {bytes, cached}. onBytes(loaded, cached, done).
 * `lookup`: the cache lookup of `key` if already started.
 */
async function getFile(cache, key, url, { what, expected, signal, onBytes }, lookup = cache.get(key)) {
  const hit = await lookup;
  if (hit) {
    onBytes(hit.length, true, true);
    return { bytes: hit, cached: true };
  }
  const report = throttled((n) => onBytes(n, false, false));
  const bytes = await fetchBytes(url, { kind: "shard", what, expected, signal, onBytes: report });
  onBytes(bytes.length, false, true);
  return { bytes, cached: false };
}

/**
 * Hand a file to Python with `use(bytes)` (which verifies it); store it in the cache
 * once verified. A cached copy that fails verification is deleted and downloaded again.
 */
async function useFile(cache, key, url, got, use, opts) {
  try {
    await use(got.bytes);
  } catch (e) {
    if (!(e instanceof WorkerError) || e.kind !== "shard") throw e;
    if (got.cached) await cache.delete(key);
    // Once more from the server itself (not the browser's HTTP cache, which may hold the
    // same bad copy): a download damaged on the way comes right, a damaged file does not.
    const again = await fetchBytes(url, { kind: "shard", ...opts, cache: "reload" });
    try {
      await use(again);
    } catch (e2) {
      if (got.cached || !(e2 instanceof WorkerError) || e2.kind !== "shard") throw e2;
      throw new WorkerError("shard", `${e2.message} (downloaded twice, the same both times: the file on ` +
        "the server is damaged; copy or convert the model again)");
    }
    got = { bytes: again, cached: false };
  }
  if (!got.cached) await cache.put(key, got.bytes);
}

/**
 * The sha256 of a shard by WebCrypto, for the engine to compare with the manifest instead of
 * hashing it in Python (measured: ~0.45 s less to load GPT-2 small's 126 MB). Null where the
 * page has no WebCrypto (not a secure context): the engine then hashes the shard itself.
 */
function webDigest(bytes) {
  return globalThis.crypto?.subtle ? sha256Hex(bytes) : Promise.resolve(null);
}

function ensureTokenizer(url, sha256, { cache, runtime, progress }) {
  if (!tokenizerLoads.has(sha256)) {
    const load = (async () => {
      const key = new URL(url);
      key.searchParams.set("sha256", sha256);  // the file name is not content-addressed
      // Its size is not in the manifest: total is known once the download is done.
      const onBytes = (loaded, cached, done) => progress({
        phase: "tokenizer", file: url.pathname.split("/").pop(), loaded, total: done ? loaded : null, cached,
      });
      const opts = { what: "the vocabulary", onBytes };
      const got = await getFile(cache, key.href, url, opts);
      const { bridge } = await runtime;
      await useFile(cache, key.href, url, got,
        (bytes) => callPython(bridge, "load_tokenizer", sha256, bytes, url.href), opts);
    })();
    load.catch(() => tokenizerLoads.delete(sha256));  // let a later load try again
    tokenizerLoads.set(sha256, load);
  }
  return tokenizerLoads.get(sha256);
}

/**
 * Load model `name` (a folder under weights/) into the engine.
 * Resolves to {config, name}; progress(fields) receives the progress messages' fields.
 */
export async function loadModel({ name, base, runtime, progress }) {
  if (typeof name !== "string" || !MODEL_NAME.test(name)) {
    throw new WorkerError("params", `"${name}" is not a model name (letters, digits, ".", "_", "-")`);
  }
  const manifestURL = new URL(`weights/${name}/manifest.json`, base);
  const { manifest, text } = await fetchManifest(name, manifestURL);
  checkDevice(name, manifest);  // before any shard is downloaded
  const shards = manifest.shards;
  const cache = await FileCache.open();
  const tokenizerSha = manifest.tokenizer.sha256;
  const tokenizer = ensureTokenizer(new URL(manifest.tokenizer.file, manifestURL), tokenizerSha,
    { cache, runtime, progress });

  // The first failure (download, verification, runtime) stops the downloads still to come.
  const controller = new AbortController();
  let failure = null;
  const fail = (e) => {
    failure ??= e;
    controller.abort();
  };
  let added = (async () => {
    await tokenizer;
    const { bridge } = await runtime;
    callPython(bridge, "begin_model", name, text, tokenizerSha);
  })();
  added.catch(fail);

  const modelTotal = shards.reduce((sum, s) => sum + s.bytes, 0);
  // Every cache lookup at once: read one after the other, they would each wait for this
  // thread, which the runtime's start keeps busy, and the last ones would hold up the model.
  // (Downloads stay one at a time, in order.)
  const lookups = shards.map((info) => cache.get(new URL(info.file, manifestURL).href));
  let before = 0;  // bytes of the shards already downloaded
  try {
    for (let i = 0; i < shards.length && !failure; i++) {
      const info = shards[i];
      const url = new URL(info.file, manifestURL);
      const start = before;
      const onBytes = (loaded, cached) => progress({
        phase: "shard", file: info.file, index: i, shards: shards.length, loaded, total: info.bytes,
        cached, model_loaded: start + loaded, model_total: modelTotal,
      });
      const opts = { what: `shard ${info.file}`, expected: info.bytes, signal: controller.signal, onBytes };
      const got = await getFile(cache, url.href, url, opts, lookups[i]);
      before += info.bytes;
      const digest = webDigest(got.bytes);  // hashed meanwhile, off this thread
      added = added.then(async () => {
        const { bridge } = await runtime;
        await useFile(cache, url.href, url, got, async (bytes) => callPython(bridge, "add_shard", name, i,
          bytes, await (bytes === got.bytes ? digest : webDigest(bytes))), opts);
      });
      added.catch(fail);
    }
    await added;
    if (failure) throw failure;
  } catch (e) {
    runtime.then(({ bridge }) => bridge.drop_model(name)).catch(() => {});
    throw failure ?? e;
  }
  progress({ phase: "prepare", file: name, loaded: 0, total: 1 });
  const { bridge } = await runtime;
  const result = callPython(bridge, "finish_model", name);
  progress({ phase: "prepare", file: name, loaded: 1, total: 1 });
  // Every shard is verified and kept: keep the manifest too, for a visit without a network
  // (the service worker answers with it when the server cannot be reached).
  await cache.put(manifestURL.href, new TextEncoder().encode(text));
  return result;
}
