/* Shows the upload queue as a list with progress, retry and remove. Used on the capture and item pages. */
"use strict";

function renderQueue(listEl, sectionEl, entries, progress) {
  const template = document.getElementById("queue-item");
  sectionEl.classList.toggle("hidden", entries.length === 0);
  const keep = new Set(entries.map((e) => e.key));
  for (const li of [...listEl.children]) if (!keep.has(li.dataset.key)) li.remove();
  for (const entry of entries) {
    let li = listEl.querySelector(`li[data-key="${entry.key}"]`);
    if (!li) {
      li = template.content.firstElementChild.cloneNode(true);
      li.dataset.key = entry.key;
      const thumb = li.querySelector("img");
      thumb.addEventListener("error", () => { thumb.style.visibility = "hidden"; });
      thumb.src = URL.createObjectURL(entry.blob);
      li.querySelector(".q-retry").addEventListener("click", () => UploadQueue.retry(entry.key));
      li.querySelector(".q-remove").addEventListener("click", () => {
        if (confirm("Remove this photo from the phone? It has not been uploaded.")) UploadQueue.discard(entry.key);
      });
      listEl.append(li);
    }
    const fraction = progress.get(entry.key);
    const states = {
      waiting: navigator.onLine ? "Waiting to upload" : "Waiting for signal",
      uploading: fraction === undefined ? "Uploading…" : `Uploading ${Math.round(fraction * 100)}%`,
      rejected: "Not accepted",
      signin: "Sign in again",
    };
    li.querySelector(".q-title").textContent = `${entry.label} · ${Math.max(1, Math.round(entry.size / 1024))} kB`;
    const state = li.querySelector(".q-state");
    state.textContent = states[entry.state] + (entry.message ? ` — ${entry.message}` : "");
    state.classList.toggle("bad", entry.state === "rejected" || entry.state === "signin");
    li.querySelector(".bar span").style.width = `${Math.round((fraction || 0) * 100)}%`;
    li.querySelector(".q-retry").classList.toggle("hidden", entry.state === "uploading" || entry.state === "rejected");
    li.querySelector(".q-remove").classList.toggle("hidden", entry.state === "uploading");
  }
}
