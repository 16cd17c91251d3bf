// gpt2web service worker: keeps the app for offline visits (registered by offline.js).
//
// Scope: the folder holding this file (the app's folder, at whatever path it is served from).
// Version: `?v=` in this script's URL, the `version` of offline.json (py/gpt2web/host/offline.py),
// which lists every file of the app with its sha256. Each version keeps its files in a cache of
// its own ("gpt2web-app <scope> <version>"), fills it completely while installing (files that an
// older version kept with the same sha256 are copied, not downloaded again; each download is
// checked against its sha256), and only then can take over, deleting the caches of older
// versions. A visit is served by one version from start to end: old and new files never mix.
//
// Requests:
//   the app's files (offline.json lists them)   from this version's cache, else the network
//   models.json                                 the network, else the last copy kept
//   weights/<model>/manifest.json               the network, else the copy the page kept once
//                                               every shard of that model was verified
//   everything else (shards, offline.json)      not touched: the page keeps verified shards itself
//                                               (download.js) and fetches them with Range

const SCOPE = self.registration.scope;
const VERSION = new URL(self.location.href).searchParams.get("v") || "unversioned";
const APP_PREFIX = `gpt2web-app ${SCOPE} `;
const APP_CACHE = APP_PREFIX + VERSION;
const DATA_CACHE = `gpt2web-data ${SCOPE}`;  // models.json
const COMPLETE = "offline.json";  // put last: a cache holding it holds every listed file

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

async function listingOf(cache) {
  const resp = await cache.match(SCOPE + COMPLETE);
  return resp ? resp.json() : null;
}

/** The files earlier versions of this scope kept, by path and sha256: where to copy them from. */
async function keptElsewhere() {
  const kept = new Map();  // `${path} ${sha256}` -> cache
  for (const name of await caches.keys()) {
    if (!name.startsWith(APP_PREFIX) || name === APP_CACHE) continue;
    const cache = await caches.open(name);
    const listing = await listingOf(cache).catch(() => null);
    for (const f of listing?.files ?? []) kept.set(`${f.path} ${f.sha256}`, cache);
  }
  return kept;
}

async function keepFile(cache, f, kept) {
  const url = SCOPE + f.path;
  const old = kept.get(`${f.path} ${f.sha256}`);
  const copy = old && await old.match(url);
  if (copy) return cache.put(url, copy);
  // no-cache: revalidated with the server (a 304 costs no download), never a stale copy.
  const resp = await fetch(url, { cache: "no-cache" });
  if (!resp.ok) throw new Error(`${f.path}: the server answered ${resp.status}`);
  const bytes = await resp.arrayBuffer();
  const sha = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (sha !== f.sha256) throw new Error(`${f.path} changed on the server while it was being kept`);
  await cache.put(url, new Response(bytes, { status: 200, headers: resp.headers }));
}

async function install() {
  const resp = await fetch(SCOPE + "offline.json", { cache: "no-store" });
  if (!resp.ok) throw new Error(`offline.json: the server answered ${resp.status}`);
  const text = await resp.text();
  const listing = JSON.parse(text);
  // The server has another version by now: this one cannot be completed (the page tries again).
  if (listing.version !== VERSION) throw new Error(`offline.json is at version ${listing.version}, not ${VERSION}`);
  const cache = await caches.open(APP_CACHE);
  const kept = await keptElsewhere();
  const queue = [...listing.files];
  const worker = async () => {
    for (let f; (f = queue.shift());) await keepFile(cache, f, kept);
  };
  try {
    await Promise.all([worker(), worker(), worker(), worker()]);
  } catch (e) {
    await caches.delete(APP_CACHE);  // an incomplete version is never used
    throw e;
  }
  await cache.put(SCOPE + COMPLETE, new Response(text, { headers: { "Content-Type": "application/json" } }));
  // The model list as it is now (the page fetched it before this worker existed).
  await networkFirst(new Request(SCOPE + "models.json", { cache: "no-cache" }), DATA_CACHE).catch(() => {});
}

self.addEventListener("install", (event) => event.waitUntil(install()));

self.addEventListener("activate", (event) => event.waitUntil((async () => {
  for (const name of await caches.keys()) {
    if (name.startsWith(APP_PREFIX) && name !== APP_CACHE) await caches.delete(name);
  }
})()));

self.addEventListener("message", (event) => {
  if (event.data?.type === "gpt2web-update") self.skipWaiting();  // the reader asked for the update
});

async function fromApp(request, url) {
  const path = url.origin + url.pathname;  // a page's query string does not change its file
  const key = path === SCOPE ? SCOPE + "index.html" : path;
  const hit = await caches.match(key, { cacheName: APP_CACHE });  // (none after a Clear)
  return hit ?? fetch(request);
}

async function networkFirst(request, keepIn) {
  try {
    const resp = await fetch(request);
    if (resp.ok && keepIn) {
      const cache = await caches.open(keepIn);
      await cache.put(request.url, resp.clone()).catch(() => {});
    }
    return resp;
  } catch (e) {
    const kept = keepIn ? await (await caches.open(keepIn)).match(request.url) : await caches.match(request.url);
    if (kept) return kept;
    throw e;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || request.headers.has("range")) return;
  const url = new URL(request.url);
  if (!url.href.startsWith(SCOPE)) return;
  const rel = url.pathname.slice(new URL(SCOPE).pathname.length);
  if (rel === "models.json") {
    event.respondWith(networkFirst(request, DATA_CACHE));
  } else if (/^weights\/[^/]+\/manifest\.json$/.test(rel)) {
    event.respondWith(networkFirst(request, null));
  } else if (rel.startsWith("weights/") || rel === "offline.json" || rel === "sw.js") {
    // the network only
  } else if (!url.search || request.mode === "navigate") {
    event.respondWith(fromApp(request, url));
  }
});
