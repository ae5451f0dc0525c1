/* Today page: undo an arrival, retry a failed photo; then show the page again. */
"use strict";

(() => {
  async function run(button, url, message) {
    button.disabled = true;
    try {
      await Intake.api("POST", url);
      Intake.toast(message);
      setTimeout(() => window.location.reload(), 600);
    } catch (err) {
      Intake.toast(err.message, "bad");
      button.disabled = false;
    }
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-undo], button[data-retry]");
    if (!button) return;
    if (button.dataset.undo) {
      if (confirm("Undo this arrival? The stock goes back down.")) {
        run(button, `/api/v1/intake/arrivals/${button.dataset.undo}/undo/`, "Arrival undone; stock restored.");
      }
    } else {
      run(button, `/api/v1/intake/snapshots/${button.dataset.retry}/retry/`, "Queued again.");
    }
  });
})();
