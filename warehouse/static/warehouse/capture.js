/* Capture page: take a photo, queue it, open the item once the server has it. */
"use strict";

(() => {
  const input = document.getElementById("photo");
  const list = document.getElementById("queue");
  const section = document.getElementById("queue-section");
  let awaiting = null; // the photo just taken: open its page when uploaded

  UploadQueue.on("change", (entries, progress) => renderQueue(list, section, entries, progress));
  UploadQueue.on("uploaded", (entry, snapshot) => {
    if (entry.key === awaiting && snapshot && snapshot.id) {
      window.location.href = `/intake/s/${snapshot.id}/`;
    } else {
      Intake.toast("A queued photo was uploaded.");
    }
  });

  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      Intake.toast("That file is not a photo.", "bad");
      return;
    }
    const entry = await UploadQueue.add(file, { url: "/api/v1/intake/snapshots/", label: "New item" });
    awaiting = entry.key;
    if (!navigator.onLine) Intake.toast("No signal: the photo is kept and will upload by itself.");
  });

  UploadQueue.emitChange();
  UploadQueue.pump();
})();
