/* Fix page: the current cut-out shown over the photo (the rest dimmed, its edge in cyan); a rectangle and keep/remove strokes drawn by touch
   (pointer events) over it, sent in the upright photo's pixel coordinates. A box alone re-cuts inside it. */
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("fix-data").textContent);
  const img = document.getElementById("fix-photo");
  const canvas = document.getElementById("fix-canvas");
  const ctx = canvas.getContext("2d");
  const colours = { rect: "#ffb000", fg: "#19c24a", bg: "#ff2d55" };
  let mode = "rect";
  let rect = null; // [x0, y0, x1, y1] in photo pixels
  let strokes = []; // {kind: "fg" | "bg", points: [[x, y], ...]} in photo pixels
  let history = []; // for undo: "rect" or "stroke"
  let drawing = null;
  let overlay = null; // the current cut-out: a layer (the mask's size) dimming what is left out, its edge in cyan
  let showOverlay = true;

  const scale = () => data.width / canvas.width; // canvas pixels -> photo pixels

  // The photo takes the height left between the tools above and the buttons below: the sticky button bar never
  // lies over it, even on a small phone.
  function fit() {
    const bar = document.getElementById("fix-bar").offsetHeight;
    const top = document.getElementById("wrap").getBoundingClientRect().top + window.scrollY;
    img.style.maxHeight = `${Math.max(160, window.innerHeight - top - bar - 12)}px`;
  }
  fit();
  window.addEventListener("resize", fit);

  function setup() {
    fit();
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const hints = data.hints || {};
    if (hints.rect) rect = hints.rect.slice();
    for (const kind of ["fg", "bg"]) for (const points of hints[kind] || []) strokes.push({ kind, points });
    draw();
    if (data.mask_url) loadOverlay();
  }

  function loadOverlay() {
    const mask = new Image();
    mask.onload = () => {
      const layer = document.createElement("canvas");
      layer.width = mask.naturalWidth;
      layer.height = mask.naturalHeight;
      const g = layer.getContext("2d");
      g.drawImage(mask, 0, 0);
      const pixels = g.getImageData(0, 0, layer.width, layer.height);
      const d = pixels.data;
      const w = layer.width;
      const h = layer.height;
      const inside = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) inside[i] = d[i * 4] >= 128 ? 1 : 0;
      // outside the cut-out is dimmed; its edge (3 mask pixels) is drawn in cyan, visible on any garment
      const edge = (x, y) => {
        for (let dy = -3; dy <= 3; dy++) {
          for (let dx = -3; dx <= 3; dx++) {
            const nx = x + dx;
            const ny = y + dy;
            if (nx >= 0 && ny >= 0 && nx < w && ny < h && !inside[ny * w + nx]) return true;
          }
        }
        return false;
      };
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = y * w + x;
          const o = i * 4;
          if (!inside[i]) {
            d[o] = 0; d[o + 1] = 0; d[o + 2] = 0; d[o + 3] = 115;
          } else if (edge(x, y)) {
            d[o] = 0; d[o + 1] = 229; d[o + 2] = 255; d[o + 3] = 255;
          } else {
            d[o + 3] = 0;
          }
        }
      }
      g.putImageData(pixels, 0, 0);
      overlay = layer;
      canvas.dataset.overlay = "shown";
      draw();
    };
    mask.src = data.mask_url;
  }

  function toPhoto(event) {
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * canvas.width * scale();
    const y = ((event.clientY - box.top) / box.height) * canvas.height * scale();
    return [Math.max(0, Math.min(data.width - 1, Math.round(x))), Math.max(0, Math.min(data.height - 1, Math.round(y)))];
  }

  function draw() {
    const k = 1 / scale();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (overlay && showOverlay) ctx.drawImage(overlay, 0, 0, canvas.width, canvas.height);
    const line = Math.max(4, canvas.width / 90);
    if (rect) {
      const [x0, y0, x1, y1] = rect.map((v) => v * k);
      ctx.fillStyle = "rgba(0,0,0,0.45)";
      ctx.beginPath();
      ctx.rect(0, 0, canvas.width, canvas.height);
      ctx.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      ctx.fill("evenodd");
      ctx.strokeStyle = colours.rect;
      ctx.lineWidth = line;
      ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    }
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of strokes) {
      ctx.strokeStyle = colours[stroke.kind];
      ctx.lineWidth = line * 1.5;
      ctx.beginPath();
      stroke.points.forEach(([x, y], i) => (i ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
      if (stroke.points.length === 1) ctx.lineTo(stroke.points[0][0] * k + 0.1, stroke.points[0][1] * k);
      ctx.stroke();
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    const p = toPhoto(event);
    if (mode === "rect") {
      drawing = { kind: "rect", start: p, previous: rect };
      rect = [p[0], p[1], p[0], p[1]];
    } else {
      drawing = { kind: "stroke", stroke: { kind: mode, points: [p] } };
      strokes.push(drawing.stroke);
    }
    draw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const p = toPhoto(event);
    if (drawing.kind === "rect") rect = [drawing.start[0], drawing.start[1], p[0], p[1]];
    else {
      const last = drawing.stroke.points[drawing.stroke.points.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 3) drawing.stroke.points.push(p);
    }
    draw();
  });
  const finish = () => {
    if (!drawing) return;
    if (drawing.kind === "rect") {
      const [x0, y0, x1, y1] = rect;
      if (Math.abs(x1 - x0) < 8 || Math.abs(y1 - y0) < 8) rect = drawing.previous;
      else {
        rect = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
        history.push({ kind: "rect", previous: drawing.previous });
      }
    } else history.push({ kind: "stroke" });
    drawing = null;
    draw();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  for (const button of document.querySelectorAll(".modes .btn")) {
    button.addEventListener("click", () => {
      mode = button.dataset.mode;
      for (const b of document.querySelectorAll(".modes .btn")) b.setAttribute("aria-pressed", String(b === button));
    });
  }
  const toggle = document.getElementById("fix-overlay");
  if (toggle) {
    toggle.addEventListener("click", () => {
      showOverlay = !showOverlay;
      toggle.setAttribute("aria-pressed", String(showOverlay));
      canvas.dataset.overlay = showOverlay ? "shown" : "hidden";
      draw();
    });
  }
  document.getElementById("fix-undo").addEventListener("click", () => {
    const last = history.pop();
    if (!last) return;
    if (last.kind === "rect") rect = last.previous;
    else strokes.pop();
    draw();
  });
  document.getElementById("fix-clear").addEventListener("click", () => {
    rect = null;
    strokes = [];
    history = [];
    draw();
  });
  document.getElementById("fix-run").addEventListener("click", async (event) => {
    const hints = {};
    if (rect) hints.rect = rect;
    const fg = strokes.filter((s) => s.kind === "fg").map((s) => s.points);
    const bg = strokes.filter((s) => s.kind === "bg").map((s) => s.points);
    if (fg.length) hints.fg = fg;
    if (bg.length) hints.bg = bg;
    if (!Object.keys(hints).length) return Intake.toast("Draw a box around the garment first.", "bad");
    event.target.disabled = true;
    try {
      await Intake.api("POST", `/api/v1/intake/snapshots/${data.id}/fix/`, hints);
      window.location.href = `/intake/s/${data.id}/`;
    } catch (err) {
      Intake.toast(err.message, "bad");
      event.target.disabled = false;
    }
  });

  if (img.complete && img.naturalWidth) setup();
  else img.addEventListener("load", setup);
})();
