/* Shared helpers for the intake pages: API calls with the CSRF token, toasts, network state. */
"use strict";

const Intake = (() => {
  const settings = JSON.parse(document.getElementById("page-settings")?.textContent || "{}") || {};

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function csrfToken() {
    return cookie("csrftoken");
  }

  /** A UUID v4; crypto.randomUUID needs HTTPS, getRandomValues works everywhere. */
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** Explain a DRF error body in one sentence. */
  function errorMessage(body, status) {
    if (!body) return status ? `The server answered ${status}.` : "No connection. Try again.";
    if (typeof body.detail === "string") return body.detail;
    const parts = [];
    for (const [field, value] of Object.entries(body)) {
      const text = Array.isArray(value) ? value.join(" ") : String(value);
      parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
    }
    return parts.join(" ") || `The server answered ${status}.`;
  }

  async function api(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new ApiError("No connection. Try again when you have signal.", 0, "offline");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.status === 401 || response.status === 403) {
      if (!data || data.code === "not_authenticated") {
        throw new ApiError("You were signed out. Reload the page to sign in.", response.status, "signed_out");
      }
    }
    if (!response.ok) throw new ApiError(errorMessage(data, response.status), response.status, data && data.code);
    return data;
  }

  let toastTimer = null;
  function toast(message, kind = "") {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.className = "toast" + (kind ? " " + kind : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.add("hidden"), kind === "bad" ? 7000 : 3500);
  }

  function updateNetwork() {
    document.body.classList.toggle("offline", !navigator.onLine);
  }
  window.addEventListener("online", updateNetwork);
  window.addEventListener("offline", updateNetwork);
  updateNetwork();

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return { settings, api, ApiError, errorMessage, csrfToken, uuid, toast, el };
})();
