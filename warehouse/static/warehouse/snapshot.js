/* Item page: follow matching, show the cut-out beside the candidates, confirm in a few taps. */
"use strict";

(() => {
  const { api, el, toast } = Intake;
  let item = JSON.parse(document.getElementById("snapshot-data").textContent);
  const base = `/api/v1/intake/snapshots/${item.id}/`;
  const $ = (id) => document.getElementById(id);
  const PENDING = new Set(["received", "processing"]);
  let pollDelay = 1000;
  let pollTimer = null;
  let sheet = null; // {mode: "confirm" | "new", candidate, size, addAnother, source}
  let busy = false;
  let showAll = false;
  const FIRST = 5; // candidates shown before "Show all": the actions stay one scroll away

  const pct = (score) => (score === null || score === undefined ? "–" : `${Math.round(score * 100)}%`);

  function banner() {
    const s = $("status");
    const d = item.decision || {};
    const top = (item.candidates || [])[0];
    let kind = "info";
    let text = "";
    let sub = "";
    switch (item.status) {
      case "received":
        text = "Photo received, waiting for the matcher…";
        sub = item.error || "";
        break;
      case "processing":
        text = "Matching…";
        sub = "Cutting out the garment and searching the catalogue.";
        break;
      case "matched":
        if (d.in_catalogue && top) {
          kind = "ok";
          text = `Best match: ${top.sku} (${pct(top.score)})`;
          sub = "Tap the right product to book it.";
        } else {
          kind = "warn";
          text = "Probably not in the catalogue";
          sub = top ? `Closest: ${top.sku} at ${pct(top.score)}. Check the list, or mark it new.` : "No similar products.";
        }
        break;
      case "failed":
        kind = "bad";
        text = "Matching failed";
        sub = item.error || "Try again, or fix the cut-out.";
        break;
      case "confirmed":
        kind = "ok";
        text = `✓ Booked as ${item.product ? item.product.sku : ""}`;
        break;
      case "new":
        kind = "ok";
        text = `✓ Draft product ${item.product ? item.product.sku : ""} made for the catalogue team`;
        break;
      case "discarded":
        kind = "warn";
        text = "Photo discarded";
        break;
      default:
        text = item.status_label;
    }
    s.className = `banner ${kind}`;
    s.replaceChildren(PENDING.has(item.status) ? el("span", { class: "spinner", "aria-hidden": "true" }) : "",
      text, sub ? el("span", { class: "sub", text: sub }) : "");
  }

  function images() {
    const version = encodeURIComponent(item.processed_at || item.updated_at || "");
    if (item.photo_url && $("img-photo").dataset.src !== item.photo_url) {
      $("img-photo").src = item.photo_url;
      $("img-photo").dataset.src = item.photo_url;
    }
    const cut = item.cutout_url ? `${item.cutout_url}?v=${version}` : "";
    if (cut && $("img-cutout").dataset.src !== cut) {
      $("img-cutout").src = cut;
      $("img-cutout").dataset.src = cut;
    }
    $("img-cutout").closest("figure").classList.toggle("hidden", !cut);
    $("thumbs").replaceChildren(...(item.group_photos || []).map((p) =>
      el("img", { src: p.photo_url, alt: `${p.photo_role} photo`, title: p.photo_role })));
  }

  function candidateCard(c, source = "candidates") {
    const searched = source === "search";
    const best = !searched && item.decision && item.decision.in_catalogue && item.decision.product_id === c.product_id;
    const chips = (c.sizes || []).map((s) => el("span", { class: "chip" + (s.stock ? "" : " zero"), text: `${s.size}: ${s.stock}` }));
    const picture = c.image_url ? el("img", { src: c.image_url, alt: "", loading: "lazy" }) : el("div", { class: "noimg", text: "no photo" });
    const button = el("button", {
      type: "button", class: "cand" + (best ? " best" : ""), "data-product": c.product_id,
      "aria-label": searched ? `${c.sku} ${c.name}` : `${c.sku} ${c.name}, score ${pct(c.score)}`,
      onclick: () => openSheet("confirm", c, { source }),
    }, picture, el("div", {},
      el("div", {}, el("span", { class: "sku", text: c.sku }), " ",
        searched ? "" : el("span", { class: "score" + (best ? " hi" : ""), text: pct(c.score) })),
      el("div", { class: "name", text: c.name }),
      el("div", { class: "meta", text: `${c.category} · ${c.gender}${c.status === "draft" ? " · draft" : ""}` }),
      chips.length ? el("div", { class: "chips" }, chips) : el("div", { class: "meta", text: "no sizes yet" })));
    return el("li", {}, button);
  }

  function candidates() {
    const show = item.actions.confirm && item.status !== "confirmed" && (item.candidates || []).length > 0;
    $("cands-section").classList.toggle("hidden", !show);
    const hidden = showAll ? 0 : Math.max(0, item.candidates.length - FIRST);
    if (show) $("cands").replaceChildren(...item.candidates.slice(0, item.candidates.length - hidden).map((c) => candidateCard(c)));
    $("btn-all").classList.toggle("hidden", !show || hidden === 0);
    $("btn-all").textContent = `Show ${hidden} more`;
  }

  function searchSection() {
    $("search-section").classList.toggle("hidden", !(item.actions.confirm && item.status !== "confirmed"));
  }

  // --- a way out when recognition fails: find the product by SKU, name or barcode ---------------------

  async function search(query) {
    query = query.trim();
    if (query.length < 2) return;
    try {
      const found = await api("GET", `/api/v1/intake/products/?q=${encodeURIComponent(query)}`);
      $("search-results").replaceChildren(...found.map((c) => candidateCard(c, "search")));
      $("search-empty").classList.toggle("hidden", found.length > 0);
    } catch (err) {
      toast(err.message, "bad");
    }
  }

  let scanStream = null;
  const canScan = "BarcodeDetector" in window && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

  function stopScan() {
    if (scanStream) scanStream.getTracks().forEach((track) => track.stop());
    scanStream = null;
    $("scanner").classList.add("hidden");
  }

  async function startScan() {
    try {
      const detector = new BarcodeDetector();
      scanStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      const video = $("scan-video");
      video.srcObject = scanStream;
      $("scanner").classList.remove("hidden");
      await video.play();
      const look = async () => {
        if (!scanStream) return;
        try {
          const codes = await detector.detect(video);
          if (codes.length) {
            stopScan();
            $("search-q").value = codes[0].rawValue;
            await search(codes[0].rawValue);
            return;
          }
        } catch (err) { /* a frame the detector could not read: try the next one */ }
        setTimeout(look, 250);
      };
      look();
    } catch (err) {
      stopScan();
      toast(`The camera cannot scan here (${err.message}). Type the code instead.`, "bad");
    }
  }

  function booked() {
    const arrivals = item.arrivals || [];
    $("booked").classList.toggle("hidden", arrivals.length === 0 && item.status !== "new");
    $("btn-more").classList.toggle("hidden", item.status !== "confirmed");
    $("arrivals").replaceChildren(...arrivals.map((a) => {
      const undo = a.can_undo
        ? el("button", { type: "button", class: "btn small bad", onclick: () => undoArrival(a) }, "Undo")
        : null;
      return el("li", {}, el("div", { class: "grow" + (a.undone_at ? " undone" : "") },
        el("b", { text: `${a.quantity} × ${a.product.sku} · ${a.size}` }),
        el("span", { class: "small muted", text: `${a.bin_location ? "bin " + a.bin_location + " · " : ""}stock now ${a.stock}${a.undone_at ? " · undone" : ""}` })),
        undo);
    }));
  }

  function actions() {
    const a = item.actions;
    $("btn-new").classList.toggle("hidden", !a.mark_new);
    $("btn-fix").classList.toggle("hidden", !a.fix);
    $("add-photo").classList.toggle("hidden", !a.add_photo);
    $("btn-retry").classList.toggle("hidden", !a.retry);
    $("btn-discard").classList.toggle("hidden", !a.discard);
    $("btn-reopen").classList.toggle("hidden", !a.reopen);
  }

  function render() {
    banner();
    images();
    candidates();
    searchSection();
    booked();
    actions();
  }

  async function refresh() {
    item = await api("GET", base);
    render();
    return item;
  }

  function poll() {
    clearTimeout(pollTimer);
    if (!PENDING.has(item.status)) return;
    pollTimer = setTimeout(async () => {
      try {
        await refresh();
        pollDelay = Math.min(pollDelay * 1.3, 5000);
      } catch (err) {
        pollDelay = 5000; // weak signal: keep trying, slower
      }
      poll();
    }, pollDelay);
  }

  async function act(fn, success) {
    if (busy) return;
    busy = true;
    try {
      const result = await fn();
      if (success) toast(success);
      await refresh();
      pollDelay = 1000;
      poll();
      return result;
    } catch (err) {
      toast(err.message, "bad");
      return null;
    } finally {
      busy = false;
    }
  }

  // --- the confirm / not-in-catalogue sheet -----------------------------------------------------------

  function selectSize(size) {
    sheet.size = size;
    for (const b of $("sizes").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.size === size));
    if (size) $("size-other").value = "";
  }

  function openSheet(mode, candidate = null, options = {}) {
    sheet = { mode, candidate, size: null, addAnother: false, source: "candidates", ...options };
    const isNew = mode === "new";
    $("sheet-title").textContent = isNew ? "Not in catalogue" : `Book ${candidate.sku}`;
    $("sheet-product").textContent = isNew
      ? "A draft product is made from these photos for the catalogue team. Size and quantity are optional."
      : candidate.name;
    $("sheet-new").classList.toggle("hidden", !isNew);
    $("sheet-submit").textContent = isNew ? "Create draft" : "Confirm arrival";
    const sizes = isNew ? [] : candidate.sizes || [];
    $("sizes").replaceChildren(...sizes.map((s) => el("button", {
      type: "button", class: "btn", "data-size": s.size, "aria-pressed": "false", onclick: () => selectSize(s.size),
    }, s.size, el("small", { text: `stock ${s.stock}` }))));
    $("sizes").classList.toggle("hidden", sizes.length === 0);
    $("size-other").placeholder = sizes.length ? "Other size" : "Size, e.g. M or 42";
    $("qty").value = isNew ? "" : "1";
    $("qty").placeholder = isNew ? "0" : "1";
    $("bin").value = localStorage.getItem("stockmatch.bin") || "";
    $("sheet-error").classList.add("hidden");
    if (sizes.length === 1) selectSize(sizes[0].size);
    $("sheet").classList.remove("hidden");
    $("scrim").classList.remove("hidden");
    for (const c of document.querySelectorAll(".cand")) {
      c.classList.toggle("selected", candidate && c.dataset.product === String(candidate.product_id));
    }
  }

  function closeSheet() {
    sheet = null;
    $("sheet").classList.add("hidden");
    $("scrim").classList.add("hidden");
    for (const c of document.querySelectorAll(".cand")) c.classList.remove("selected");
  }

  function sheetError(message) {
    $("sheet-error").textContent = message;
    $("sheet-error").classList.remove("hidden");
  }

  async function submitSheet(event) {
    event.preventDefault();
    if (!sheet || busy) return;
    const other = $("size-other").value.trim();
    const size = other || sheet.size || "";
    const quantity = parseInt($("qty").value, 10);
    const bin = $("bin").value.trim();
    const isNew = sheet.mode === "new";
    if (!isNew && !size) return sheetError("Choose a size.");
    if (!isNew && !(quantity >= 1)) return sheetError("The quantity must be at least 1.");
    localStorage.setItem("stockmatch.bin", bin);
    const submit = $("sheet-submit");
    submit.disabled = true;
    busy = true;
    try {
      if (isNew) {
        const body = { name: $("new-name").value.trim(), size, bin_location: bin };
        if (quantity >= 1) body.quantity = quantity;
        const result = await api("POST", `${base}new/`, body);
        toast(`Draft ${result.product.sku} created.`);
      } else {
        const known = (sheet.candidate.sizes || []).find((s) => s.size === size);
        const body = known
          ? { variant_id: known.variant_id, quantity, bin_location: bin }
          : { product_id: sheet.candidate.product_id, size, quantity, bin_location: bin };
        body.idempotency_key = sheet.key || (sheet.key = Intake.uuid());
        if (sheet.addAnother) body.add_another = true; // an item books one arrival unless asked for another
        if (sheet.source !== "candidates") body.source = sheet.source;
        const arrival = await api("POST", `${base}confirm/`, body);
        toast(`Booked ${arrival.quantity} × ${arrival.product.sku} ${arrival.size}. Stock now ${arrival.stock}.`);
      }
      closeSheet();
      busy = false;
      await refresh();
    } catch (err) {
      sheetError(err.message);
    } finally {
      busy = false;
      submit.disabled = false;
    }
  }

  async function undoArrival(arrival) {
    await act(() => api("POST", `/api/v1/intake/arrivals/${arrival.id}/undo/`), "Arrival undone; stock restored.");
  }

  $("sheet").addEventListener("submit", submitSheet);
  $("sheet-cancel").addEventListener("click", closeSheet);
  $("scrim").addEventListener("click", closeSheet);
  $("size-other").addEventListener("input", () => $("size-other").value && selectSize(null));
  $("qty-minus").addEventListener("click", () => { $("qty").value = Math.max(1, (parseInt($("qty").value, 10) || 1) - 1); });
  $("qty-plus").addEventListener("click", () => { $("qty").value = (parseInt($("qty").value, 10) || 0) + 1; });
  $("btn-new").addEventListener("click", () => openSheet("new"));
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search($("search-q").value); });
  $("btn-scan").classList.toggle("hidden", !canScan); // only where the browser offers BarcodeDetector
  $("btn-scan").addEventListener("click", startScan);
  $("scan-stop").addEventListener("click", stopScan);
  $("btn-all").addEventListener("click", () => { showAll = true; candidates(); });
  $("btn-more").addEventListener("click", () => {
    const product = item.product && (item.candidates || []).find((c) => c.product_id === item.product.id);
    openSheet("confirm", product || { ...item.product, product_id: item.product.id, sizes: [], name: item.product.name },
      { addAnother: true });
  });
  $("btn-retry").addEventListener("click", () => act(() => api("POST", `${base}retry/`), "Queued again."));
  $("btn-discard").addEventListener("click", () => {
    if (confirm("Discard this photo? You can restore it from the Today page.")) act(() => api("POST", `${base}discard/`));
  });
  $("btn-reopen").addEventListener("click", () => act(() => api("POST", `${base}reopen/`), "Decision taken back."));

  // --- more photos of the same item ---------------------------------------------------------------------
  const queueList = $("queue");
  UploadQueue.on("change", (entries, progress) =>
    renderQueue(queueList, $("queue-section"), entries.filter((e) => e.headId === item.id), progress));
  UploadQueue.on("uploaded", (entry) => {
    if (entry.headId !== item.id) return;
    toast("Photo added; matching again with all photos.");
    pollDelay = 1000;
    refresh().then(poll).catch(() => poll());
  });
  for (const input of document.querySelectorAll("#add-photo input")) {
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      input.value = "";
      if (!file) return;
      await UploadQueue.add(file, { url: `${base}photos/`, role: input.dataset.role, label: `${input.dataset.role} photo`, headId: item.id });
    });
  }

  render();
  poll();
  UploadQueue.emitChange();
  UploadQueue.pump();
})();
