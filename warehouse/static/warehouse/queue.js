/* The upload queue: photos are shrunk on the phone, kept in IndexedDB, and sent with their
   Idempotency-Key until the server has them. A retry after a lost response (or a double tap) sends
   the same key, so the server never makes two snapshots of one photo. */
"use strict";

const UploadQueue = (() => {
  const DB_NAME = "stockmatch-intake";
  const STORE = "uploads";
  const MAX_SIDE = 2000;
  const JPEG_QUALITY = 0.85;
  const TIMEOUT_MS = 120000;
  const listeners = { change: [], uploaded: [] };
  const progress = new Map(); // key -> 0..1, not persisted
  const memory = new Map(); // fallback when IndexedDB is unavailable (private mode)
  let dbPromise = null;
  let busy = false;
  let timer = null;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise((resolve) => {
      if (!window.indexedDB) return resolve(null);
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "key" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => resolve(null);
    });
    return dbPromise;
  }

  async function tx(mode, fn) {
    const db = await openDb();
    if (!db) return fn(null);
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const store = t.objectStore(STORE);
      let result;
      Promise.resolve(fn(store)).then((value) => { result = value; });
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }

  function req(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  const put = (entry) => tx("readwrite", (s) => (s ? req(s.put(entry)) : memory.set(entry.key, entry)));
  const remove = (key) => tx("readwrite", (s) => (s ? req(s.delete(key)) : memory.delete(key)));
  const get = (key) => tx("readonly", (s) => (s ? req(s.get(key)) : memory.get(key)));
  async function all() {
    const entries = await tx("readonly", (s) => (s ? req(s.getAll()) : [...memory.values()]));
    return (entries || []).sort((a, b) => a.createdAt - b.createdAt);
  }

  function on(event, fn) {
    listeners[event].push(fn);
  }

  async function emitChange() {
    const entries = await all();
    listeners.change.forEach((fn) => fn(entries, progress));
  }

  /** Shrink to MAX_SIDE on the long side as an upright JPEG; send the file as is if the browser cannot decode it (HEIC). */
  async function downscale(file) {
    let source;
    try {
      source = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (err) {
      return { blob: file, name: file.name || "photo" };
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(source.width, source.height));
    if (scale === 1 && file.type === "image/jpeg" && file.size < 3 * 1024 * 1024) {
      source.close && source.close();
      return { blob: file, name: file.name || "photo.jpg" };
    }
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(source.width * scale);
    canvas.height = Math.round(source.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
    source.close && source.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    return blob ? { blob, name: "photo.jpg" } : { blob: file, name: file.name || "photo" };
  }

  /** Keep a photo for upload to ``url`` (the snapshots list, or an item's photos). Returns the entry. */
  async function add(file, { url, role = "front", label = "Photo", headId = null } = {}) {
    const { blob, name } = await downscale(file);
    const entry = {
      key: Intake.uuid(), url, role, label, headId, blob, name, createdAt: Date.now(),
      state: "waiting", message: "", attempts: 0, nextTry: 0, size: blob.size,
    };
    await put(entry);
    await emitChange();
    pump();
    return entry;
  }

  function send(entry) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const form = new FormData();
      form.append("photo", entry.blob, entry.name);
      form.append("idempotency_key", entry.key);
      form.append("photo_role", entry.role);
      xhr.open("POST", entry.url);
      xhr.timeout = TIMEOUT_MS;
      xhr.setRequestHeader("Idempotency-Key", entry.key);
      xhr.setRequestHeader("X-CSRFToken", Intake.csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) {
          progress.set(entry.key, event.loaded / event.total);
          emitChange();
        }
      };
      const done = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        resolve({ status: xhr.status, body });
      };
      xhr.onload = done;
      xhr.onerror = () => resolve({ status: 0, body: null });
      xhr.ontimeout = () => resolve({ status: 0, body: null, timeout: true });
      xhr.send(form);
    });
  }

  async function uploadOne(entry) {
    entry.state = "uploading";
    entry.message = "";
    progress.set(entry.key, 0);
    await put(entry);
    await emitChange();
    const { status, body, timeout } = await send(entry);
    progress.delete(entry.key);
    if (status >= 200 && status < 300) {
      await remove(entry.key);
      await emitChange();
      listeners.uploaded.forEach((fn) => fn(entry, body));
      return;
    }
    const current = await get(entry.key);
    if (!current) return; // removed meanwhile
    current.attempts += 1;
    if (status === 0 || status >= 500 || status === 429) {
      const wait = Math.min(60, 2 ** Math.min(current.attempts, 6));
      current.state = "waiting";
      current.nextTry = Date.now() + wait * 1000;
      current.message = (timeout ? "Upload timed out" : status ? `Server busy (${status})` : "No signal")
        + ` · trying again in ${wait}s`;
    } else if ((status === 401 || status === 403) && (!body || body.code === "not_authenticated")) {
      current.state = "signin";
      current.message = "Signed out: sign in again, the photo is kept.";
    } else {
      current.state = "rejected";
      current.message = Intake.errorMessage(body, status);
    }
    await put(current);
    await emitChange();
  }

  async function pump() {
    if (busy) return;
    busy = true;
    clearTimeout(timer);
    try {
      for (;;) {
        if (!navigator.onLine) break;
        const entries = await all();
        const next = entries.find((e) => (e.state === "waiting" || e.state === "uploading") && e.nextTry <= Date.now());
        if (!next) break;
        await uploadOne(next);
      }
    } finally {
      busy = false;
      schedule();
    }
  }

  async function schedule() {
    const waiting = (await all()).filter((e) => e.state === "waiting");
    if (!waiting.length) return;
    const soonest = Math.min(...waiting.map((e) => e.nextTry));
    clearTimeout(timer);
    timer = setTimeout(pump, Math.max(1000, soonest - Date.now()));
  }

  /** Send again now (after a rejection the worker fixed, or without waiting for the backoff). */
  async function retry(key) {
    const entry = await get(key);
    if (!entry) return;
    entry.state = "waiting";
    entry.nextTry = 0;
    entry.message = "";
    await put(entry);
    await emitChange();
    pump();
  }

  async function discard(key) {
    await remove(key);
    progress.delete(key);
    await emitChange();
  }

  window.addEventListener("online", pump);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && pump());

  return { add, all, on, pump, retry, discard, emitChange };
})();
