/* The mirror kiosk: camera preview, capture (button or automatic when the picture is held still), large
   recommendation cards with sizes and deals, a fitting-room shortlist, and an idle screen.

   The device key: open /mirror/?key=<prefix.secret> once; the page stores it in localStorage, removes it from
   the address bar, and sends it as "Authorization: Api-Key ..." on every API call. Nothing is stored
   about the shopper; the shortlist lives in this page until it is sent, and is cleared on idle. */
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("kiosk-settings").textContent);
  const KEY_NAME = "stockmatch.mirror.key";
  const $ = (id) => document.getElementById(id);
  const video = $("preview"), status = $("status"), results = $("results");
  const STILL_MS = 1200, DIFF_STILL = 6, DIFF_MOTION = 14, COOLDOWN_MS = 5000;
  let shortlist = [];  // [{sku, size, name}]
  let busy = false, lastActivity = Date.now(), lastCapture = 0, stillSince = 0, capturedThisScene = false, prev = null;

  // -- device key -----------------------------------------------------------------------------------------
  const url = new URL(window.location.href);
  if (url.searchParams.get("key")) {
    localStorage.setItem(KEY_NAME, url.searchParams.get("key"));
    url.searchParams.delete("key");
    history.replaceState(null, "", url.pathname + url.search);
  }
  const key = () => localStorage.getItem(KEY_NAME);
  if (!key()) $("setup").classList.remove("hidden");

  async function api(path, options) {
    const response = await fetch(path, Object.assign({}, options, {
      headers: Object.assign({ "Authorization": "Api-Key " + key() }, (options || {}).headers || {}),
    }));
    if (response.status === 401) { $("setup").classList.remove("hidden"); throw new Error("key"); }
    const body = response.headers.get("Content-Type") && response.headers.get("Content-Type").includes("json")
      ? await response.json() : {};
    if (!response.ok) throw new Error(body.detail || ("Error " + response.status));
    return body;
  }

  function say(text, working) { status.textContent = text; status.classList.toggle("busy", !!working); }

  // -- camera, or the file fallback ---------------------------------------------------------------------
  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return fallback();
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1080 }, height: { ideal: 1920 } }, audio: false });
      await video.play();
      setInterval(watch, 250);
    } catch (error) { fallback(); }
  }
  function fallback() {
    $("capture").classList.add("hidden");
    $("upload").classList.remove("hidden");
    say("No camera: choose a photo of the garment.");
  }

  // -- automatic capture: frame difference on a 64x48 grey thumbnail ------------------------------------
  const probe = document.createElement("canvas");
  probe.width = 64; probe.height = 48;
  const probeCtx = probe.getContext("2d", { willReadFrequently: true });
  function watch() {
    if (!video.videoWidth) return;
    probeCtx.drawImage(video, 0, 0, 64, 48);
    const data = probeCtx.getImageData(0, 0, 64, 48).data;
    const grey = new Uint8Array(64 * 48);
    for (let i = 0; i < grey.length; i++) grey[i] = (data[4 * i] * 3 + data[4 * i + 1] * 6 + data[4 * i + 2]) / 10;
    if (prev) {
      let sum = 0;
      for (let i = 0; i < grey.length; i++) sum += Math.abs(grey[i] - prev[i]);
      const diff = sum / grey.length, now = Date.now();
      if (diff > DIFF_MOTION) { stillSince = 0; capturedThisScene = false; activity(); }
      else if (diff < DIFF_STILL) {
        if (!stillSince) stillSince = now;
        if (!capturedThisScene && !busy && now - stillSince >= STILL_MS && now - lastCapture >= COOLDOWN_MS) {
          capturedThisScene = true;
          capture();
        }
      }
    }
    prev = grey;
  }

  function capture() {
    if (busy || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => recommend(blob, "frame.jpg"), "image/jpeg", 0.88);
  }

  async function recommend(blob, name) {
    if (!key()) return;
    busy = true; lastCapture = Date.now(); activity();
    say("Looking", true);
    const form = new FormData();
    form.append("frame", blob, name);
    try {
      const answer = await api(settings.recommendUrl, { method: "POST", body: form });
      if (answer.status !== "ok") { say(answer.message); showRegions([]); return; }
      say("Here is what we have for you.");
      showRegions(answer.garments);
      render(answer.garments);
    } catch (error) {
      if (error.message !== "key") say(error.message);
    } finally { busy = false; }
  }

  function showRegions(garments) {
    // The preview fills its box (object-fit: cover): map frame shares to the part of the video that shows.
    const box = $("regions"), W = video.clientWidth, H = video.clientHeight;
    const vw = video.videoWidth || W, vh = video.videoHeight || H, scale = Math.max(W / vw, H / vh);
    const dx = (W - vw * scale) / 2, dy = (H - vh * scale) / 2;
    box.innerHTML = "";
    garments.forEach((g) => {
      const div = document.createElement("div");
      div.className = "region";
      const [x0, y0, x1, y1] = g.region;
      Object.assign(div.style, { left: dx + x0 * vw * scale + "px", top: dy + y0 * vh * scale + "px",
        width: (x1 - x0) * vw * scale + "px", height: (y1 - y0) * vh * scale + "px" });
      box.appendChild(div);
    });
  }

  // -- cards ------------------------------------------------------------------------------------------------
  const KIND = { "topwear": "Top", "bottomwear": "Bottom", "full-body": "Dress / jumpsuit", "footwear": "Shoes",
    "outerwear": "Jacket / coat", "accessory": "Accessory" };
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (node.className = v) : node.setAttribute(k, v)));
    children.flat().forEach((c) => c != null && node.append(c instanceof Node ? c : document.createTextNode(c)));
    return node;
  }
  function money(value, currency) {
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(value)); }
    catch (e) { return value + " " + currency; }
  }
  function priceOf(p) {
    if (p.price == null && !p.deal) return el("div", { class: "price none" }, "Ask in store");
    if (p.deal && p.deal.price != null)
      return el("div", { class: "price" }, p.price != null ? el("s", {}, money(p.price, p.currency)) : null, money(p.deal.price, p.currency));
    return el("div", { class: "price" }, money(p.price, p.currency));
  }
  function card(p) {
    const sizes = p.sizes.length
      ? p.sizes.map((size) => {
        const button = el("button", { class: "size", type: "button", "data-sku": p.sku, "data-size": size }, size);
        if (shortlist.some((i) => i.sku === p.sku && i.size === size)) button.classList.add("picked");
        button.addEventListener("click", (event) => { event.stopPropagation(); pick(p, size); });
        return button;
      })
      : [el("span", { class: "none" }, "Sold out")];
    const img = el("img", { src: p.image_urls[0] || "", alt: p.name, loading: "lazy" });
    img.addEventListener("click", () => detail(p.sku));
    return el("article", { class: "card", "data-sku": p.sku }, img,
      el("div", { class: "body" },
        p.deal ? el("span", { class: "deal" }, p.deal.percent_off ? `${p.deal.label} −${p.deal.percent_off}%` : p.deal.label) : null,
        el("div", { class: "name" }, p.name), p.brand ? el("div", { class: "brand" }, p.brand) : null,
        priceOf(p), el("div", { class: "sizes" }, sizes)));
  }
  function render(garments) {
    results.innerHTML = "";
    garments.forEach((g) => {
      const kind = g.kind ? KIND[g.kind.label] || g.kind.label : "Garment";
      const who = g.gender ? ` · ${g.gender.label}` : "";
      results.append(el("section", { class: "garment" },
        el("h2", {}, kind + who, " ", el("small", {}, g.kind ? `${Math.round(g.kind.confidence * 100)} % sure` : "")),
        el("h3", {}, "Similar in store"), el("div", { class: "row similar" }, g.similar.map(card)),
        g.complete_the_look.length ? [el("h3", {}, "Complete the look"), el("div", { class: "row look" }, g.complete_the_look.map(card))] : []));
    });
  }
  async function detail(sku) {
    activity();
    try {
      const p = await api(settings.productUrl.replace("SKU", encodeURIComponent(sku)));
      const box = $("detail");
      box.innerHTML = "";
      const close = el("button", { class: "close", type: "button" }, "Close");
      close.addEventListener("click", () => box.classList.add("hidden"));
      box.append(...p.image_urls.slice(0, 2).map((src) => el("img", { src, alt: p.name })), card(p), close);
      box.classList.remove("hidden");
    } catch (error) { if (error.message !== "key") say(error.message); }
  }

  // -- shortlist ------------------------------------------------------------------------------------------
  function pick(p, size) {
    activity();
    const at = shortlist.findIndex((i) => i.sku === p.sku && i.size === size);
    if (at >= 0) shortlist.splice(at, 1); else shortlist.push({ sku: p.sku, size, name: p.name });
    document.querySelectorAll(`.size[data-sku="${CSS.escape(p.sku)}"][data-size="${CSS.escape(size)}"]`)
      .forEach((b) => b.classList.toggle("picked", at < 0));
    drawShortlist();
  }
  function drawShortlist() {
    const list = $("shortlist-items");
    list.innerHTML = "";
    shortlist.forEach((item) => {
      const remove = el("button", { type: "button", "aria-label": "Remove" }, "×");
      remove.addEventListener("click", () => pick(item, item.size));
      list.append(el("li", { "data-sku": item.sku }, `${item.name} · ${item.size}`, remove));
    });
    $("shortlist").classList.toggle("hidden", shortlist.length === 0 && $("sent").classList.contains("hidden"));
    $("send").classList.toggle("hidden", shortlist.length === 0);
  }
  $("send").addEventListener("click", async () => {
    activity();
    try {
      const sent = await api(settings.shortlistUrl, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ items: shortlist.map(({ sku, size }) => ({ sku, size })) }) });
      shortlist = [];
      document.querySelectorAll(".size.picked").forEach((b) => b.classList.remove("picked"));
      const note = $("sent");
      note.innerHTML = "";
      note.append("Sent! Tell the fitting room your code ", el("strong", { id: "pickup-code" }, sent.code));
      note.classList.remove("hidden");
      drawShortlist();
    } catch (error) { if (error.message !== "key") say(error.message); }
  });

  // -- idle -------------------------------------------------------------------------------------------------
  function activity() { lastActivity = Date.now(); $("idle").classList.add("hidden"); }
  setInterval(() => {
    if (Date.now() - lastActivity < settings.idleSeconds * 1000 || !$("idle").classList.contains("hidden")) return;
    shortlist = []; results.innerHTML = ""; showRegions([]); drawShortlist();
    $("sent").classList.add("hidden"); $("detail").classList.add("hidden");
    say("Hold the garment up to the mirror.");
    $("idle").classList.remove("hidden");
  }, 1000);
  ["pointerdown", "keydown"].forEach((type) => document.addEventListener(type, activity));

  $("capture").addEventListener("click", capture);
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) recommend(file, file.name);
    event.target.value = "";
  });
  startCamera();
})();
