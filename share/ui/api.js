/* api.js - the console's talk with this node's HTTP API: requests with a
 * time limit, the Prometheus text of /metrics parsed, key paths encoded,
 * and el(), the one way the console builds DOM (text only, never HTML). */
"use strict";

const KV = {};

/* fetch with a time limit (ms); resolves to the Response or throws. */
KV.request = function (method, path, opts) {
  opts = opts || {};
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 4000);
  const init = { method: method, headers: opts.headers || {}, signal: ctl.signal,
                 cache: "no-store", credentials: "same-origin" };
  if (opts.body !== undefined) init.body = opts.body;
  return fetch(path, init).finally(() => clearTimeout(timer));
};

/* GET a JSON body: {status, body, headers}; body null when not JSON. */
KV.json = async function (method, path, opts) {
  const r = await KV.request(method, path, opts);
  let body = null;
  try { body = JSON.parse(await r.text()); } catch (e) { body = null; }
  return { status: r.status, body: body, headers: r.headers };
};

/* /metrics text -> { "name": value, "name{label=\"x\"}": value }. */
KV.parseMetrics = function (text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    if (sp < 0) continue;
    const v = Number(line.slice(sp + 1));
    if (!Number.isNaN(v)) out[line.slice(0, sp)] = v;
  }
  return out;
};

/* The path of key K: every byte percent-encoded but the unreserved ones,
 * so "/" inside a key stays part of it (%2F) and nothing is a path. */
KV.keyPath = function (k) { return "/key/" + encodeURIComponent(k); };

/* The index of an ETag "N". */
KV.etagIndex = function (h) {
  const m = /"(\d+)"/.exec(h || "");
  return m ? Number(m[1]) : null;
};

/* el("td", {class: "x", data: {member: id}}, "text", child...): children
 * are nodes or strings; strings become text nodes. */
KV.el = function (tag, attrs, ...kids) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else e.setAttribute(k, v);
    }
  }
  for (const c of kids) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number"
      ? document.createTextNode(String(c)) : c);
  }
  return e;
};

KV.clear = function (e) { while (e.firstChild) e.removeChild(e.firstChild); };

KV.ago = function (ms) {
  if (ms === null || ms === undefined || ms < 0) return "-";
  if (ms < 1000) return ms + " ms";
  return (ms / 1000).toFixed(1) + " s";
};

KV.bytes = function (n) {
  if (n === undefined || n === null) return "-";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
};
