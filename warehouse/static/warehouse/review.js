// Review queue: keyboard-first decisions. j/k move, a accept, r reassign (search), m merge a draft,
// c complete a draft, x reject, 1-5 reassign to that candidate, space select for bulk, Esc close search.
(function () {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const searchUrl = root.dataset.searchUrl;
  const cards = () => Array.from(root.querySelectorAll(".rq-card:not(.is-done)"));
  let current = null;

  function focusCard(card) {
    if (!card) return;
    if (current) current.classList.remove("is-current");
    current = card;
    card.classList.add("is-current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const list = cards();
    if (!list.length) return;
    const at = list.indexOf(current);
    focusCard(list[Math.min(Math.max(at + step, 0), list.length - 1)] || list[0]);
  }

  function say(card, text, ok) {
    const msg = card.querySelector(".rq-msg");
    msg.textContent = text;
    msg.className = "rq-msg " + (ok ? "good" : "bad");
  }

  async function decide(card, action, productId) {
    const body = new URLSearchParams({ action: action });
    if (productId) body.set("product_id", productId);
    say(card, "Saving…", true);
    let response;
    try {
      response = await fetch(card.dataset.decideUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      });
    } catch (err) {
      say(card, "No connection; nothing was saved. Try again.", false);
      return;
    }
    const data = await response.json().catch(() => ({ detail: "Unexpected answer (" + response.status + ")." }));
    if (!response.ok) { say(card, data.detail, false); return; }
    say(card, data.detail, true);
    card.classList.add("is-done");
    card.dataset.decision = data.decision;
    const box = card.querySelector(".rq-check");
    if (box) { box.checked = false; box.disabled = true; }
    const total = document.getElementById("rq-total");
    total.textContent = Math.max(0, parseInt(total.textContent, 10) - 1);
    closeSearch(card);
    const list = cards();
    focusCard(list.find((c) => c.compareDocumentPosition(card) & Node.DOCUMENT_POSITION_PRECEDING) || list[list.length - 1]);
    updateSelected();
  }

  function openSearch(card, mode) {
    const panel = card.querySelector(".rq-search");
    panel.hidden = false;
    panel.dataset.mode = mode;
    const input = panel.querySelector(".rq-q");
    input.focus();
  }

  function closeSearch(card) {
    const panel = card.querySelector(".rq-search");
    panel.hidden = true;
    card.focus({ preventScroll: true });
  }

  let timer = null;
  async function runSearch(card, params) {
    const list = card.querySelector(".rq-results");
    const response = await fetch(searchUrl + "?" + new URLSearchParams(params), {
      credentials: "same-origin", headers: { "Accept": "application/json" },
    });
    if (!response.ok) { list.innerHTML = "<li>Search failed (" + response.status + ").</li>"; return; }
    const data = await response.json();
    list.innerHTML = "";
    data.results.forEach((row, i) => {
      const li = document.createElement("li");
      li.dataset.product = row.product_id;
      if (i === 0) li.classList.add("on");
      const img = document.createElement("img");
      if (row.thumb) img.src = row.thumb;
      img.alt = "";
      const text = document.createElement("span");
      const score = row.score != null ? " · " + row.score.toFixed(2) : "";
      text.textContent = row.sku + " · " + row.name + " · " + row.category + " · stock " + row.stock + score;
      li.append(img, text);
      li.addEventListener("click", () => pick(card, row.product_id));
      list.append(li);
    });
    if (!data.results.length) list.innerHTML = "<li>No active product found.</li>";
  }

  // A candidate chosen: the worker's own choice (or, without one, the matcher's best) is an accept.
  function chooseCandidate(card, cand) {
    const cands = Array.from(card.querySelectorAll(".rq-cand"));
    const hasChoice = cands.some((c) => c.classList.contains("is-choice"));
    const draft = card.dataset.draft === "1";
    if (!draft && (cand.classList.contains("is-choice") || (!hasChoice && cands[0] === cand))) decide(card, "accept");
    else decide(card, draft ? "merge" : "reassign", cand.dataset.product);
  }

  function pick(card, productId) {
    const mode = card.querySelector(".rq-search").dataset.mode || "reassign";
    decide(card, mode, productId);
  }

  root.querySelectorAll(".rq-card").forEach((card) => {
    card.addEventListener("focus", () => focusCard(card));
    card.addEventListener("click", (event) => {
      const act = event.target.closest("[data-act]");
      if (act) {
        const action = act.dataset.act;
        if (action === "complete") return; // a link
        event.preventDefault();
        if (action === "reassign" || action === "merge") openSearch(card, action);
        else decide(card, action);
        return;
      }
      const cand = event.target.closest(".rq-cand");
      if (cand && !card.classList.contains("is-done")) chooseCandidate(card, cand);
    });
    const input = card.querySelector(".rq-q");
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => runSearch(card, { q: input.value }), 200);
    });
    input.addEventListener("keydown", async (event) => {
      const results = Array.from(card.querySelectorAll(".rq-results li[data-product]"));
      const on = results.findIndex((li) => li.classList.contains("on"));
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(timer);
        if (!results.length || input.dataset.searched !== input.value) {
          await runSearch(card, { q: input.value });
          input.dataset.searched = input.value;
          const first = card.querySelector(".rq-results li[data-product]");
          if (first && event.key === "Enter" && !event.shiftKey) pick(card, first.dataset.product);
          return;
        }
        pick(card, results[Math.max(on, 0)].dataset.product);
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!results.length) return;
        const next = Math.min(Math.max(on + (event.key === "ArrowDown" ? 1 : -1), 0), results.length - 1);
        results.forEach((li, i) => li.classList.toggle("on", i === next));
      } else if (event.key === "Escape") {
        closeSearch(card);
      }
      event.stopPropagation();
    });
    card.querySelector(".rq-similar").addEventListener("click", () => runSearch(card, { similar: card.dataset.id }));
  });

  function updateSelected() {
    document.getElementById("rq-selected").textContent = root.querySelectorAll(".rq-check:checked").length;
  }
  root.querySelectorAll(".rq-check").forEach((box) => box.addEventListener("change", updateSelected));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches("input, textarea, select")) return;
    const card = current;
    const key = event.key;
    if (key === "j") { move(1); return; }
    if (key === "k") { move(-1); return; }
    if (!card || card.classList.contains("is-done")) return;
    if (key === "a") decide(card, "accept");
    else if (key === "x") decide(card, "reject");
    else if (key === "r") { event.preventDefault(); openSearch(card, "reassign"); }
    else if (key === "m" && card.dataset.draft === "1") { event.preventDefault(); openSearch(card, "merge"); }
    else if (key === "c" && card.dataset.draft === "1") window.location.href = card.dataset.completeUrl;
    else if (key === " ") {
      event.preventDefault();
      const box = card.querySelector(".rq-check");
      box.checked = !box.checked;
      updateSelected();
    } else if (/^[1-5]$/.test(key)) {
      const cand = card.querySelectorAll(".rq-cand")[parseInt(key, 10) - 1];
      if (cand) chooseCandidate(card, cand);
    }
  });

  focusCard(cards()[0]);
})();
