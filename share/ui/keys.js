/* keys.js - the key browser: keys under a prefix grouped by "/" into
 * folders, a page of the listing at a time, one key's value and index,
 * create / edit / delete with If-Match (a conflict is shown, never
 * overwritten), and live updates from GET /watch (SSE, resumed with
 * Last-Event-ID by the browser). Keys and values are only ever text. */
"use strict";

const Keys = {
  pageSize: 100,
  prefix: "",
  afters: [""],     /* the "after" of each page seen, for previous */
  more: false,
  current: null,    /* {key, index, value} shown */
  dirty: false,     /* the value box was edited */
  es: null,
  reloadTimer: 0,
  canWrite: false,
};

Keys.msg = function (id, text, cls) {
  const e = document.getElementById(id);
  e.textContent = text || "";
  e.className = "msg " + (cls || "");
};

Keys.crumbs = function () {
  const c = document.getElementById("crumbs");
  KV.clear(c);
  c.appendChild(KV.el("button", { type: "button", on: { click: () => Keys.open("") } }, "(all keys)"));
  let acc = "";
  for (const part of Keys.prefix.split("/").slice(0, -1)) {
    acc += part + "/";
    const p = acc;
    c.appendChild(document.createTextNode(" / "));
    c.appendChild(KV.el("button", { type: "button", on: { click: () => Keys.open(p) } }, part));
  }
};

/* Opens folder prefix p at its first page. */
Keys.open = function (p) {
  Keys.prefix = p;
  Keys.afters = [""];
  Keys.crumbs();
  Keys.load();
  Keys.watch();
};

/* One page of the browser: up to pageSize entries (keys and folders) of
 * the open prefix. A folder's keys are skipped on the server's listing by
 * asking again after the folder's last possible key (the folder name +
 * U+10FFFF, above every UTF-8 continuation), so a folder of 10000 keys
 * costs one entry, not 100 pages. At most 10 listing requests a page. */
Keys.load = async function () {
  const list = document.getElementById("keylist");
  let after = Keys.afters[Keys.afters.length - 1];
  const entries = [];
  const seen = new Set();
  let more = true, index = 0, tries = 0;
  while (more && entries.length < Keys.pageSize && tries++ < 10) {
    const q = "/key?prefix=" + encodeURIComponent(Keys.prefix) + "&limit=" + Keys.pageSize +
              (after ? "&after=" + encodeURIComponent(after) : "");
    let r;
    try { r = await KV.json("GET", q); } catch (e) { r = { status: 0, body: null, error: String(e) }; }
    if (r.status !== 200 || !r.body) {
      KV.clear(list);
      list.appendChild(KV.el("li", { class: "muted" }, "listing failed: " + r.status + " " +
                             ((r.body && r.body.error) || r.error || "")));
      return;
    }
    index = Number(r.headers.get("X-Keyval-Index")) || index;
    more = !!r.body.more;
    for (const it of r.body.items) {
      if (entries.length >= Keys.pageSize) { more = true; break; }
      const rest = it.key.slice(Keys.prefix.length);
      const slash = rest.indexOf("/");
      if (slash >= 0 && slash < rest.length - 1) {
        const folder = Keys.prefix + rest.slice(0, slash + 1);
        after = folder + "\u{10FFFF}";
        if (seen.has(folder)) continue;
        seen.add(folder);
        entries.push({ folder: folder, label: rest.slice(0, slash + 1) });
      } else {
        after = it.key;
        entries.push({ key: it.key, label: rest, index: it.index });
      }
    }
  }
  Keys.more = more;
  Keys.lastOfPage = after;
  KV.clear(list);
  for (const e of entries) {
    if (e.folder) {
      list.appendChild(KV.el("li", { class: "folder", data: { folder: e.folder },
                                     on: { click: () => Keys.open(e.folder) } }, e.label));
    } else {
      const li = KV.el("li", { class: "key", data: { key: e.key },
                               on: { click: () => Keys.show(e.key) } }, e.label);
      li.title = "index " + e.index;
      if (Keys.current && Keys.current.key === e.key) li.classList.add("selected");
      list.appendChild(li);
    }
  }
  if (!entries.length) list.appendChild(KV.el("li", { class: "muted" }, "(no keys)"));
  document.getElementById("page-prev").disabled = Keys.afters.length <= 1;
  document.getElementById("page-next").disabled = !Keys.more;
  document.getElementById("page-info").textContent = "page " + Keys.afters.length +
    " \u00b7 " + entries.length + " entries" + (Keys.more ? " \u00b7 more" : "");
  Keys.listIndex = index;
};

Keys.show = async function (k) {
  let r;
  try { r = await KV.request("GET", KV.keyPath(k)); } catch (e) { Keys.msg("kv-msg", "read failed: " + e, "error"); return; }
  const view = document.getElementById("keyview");
  view.classList.remove("hidden");
  document.getElementById("kv-conflict").classList.add("hidden");
  Keys.msg("kv-msg", "");
  const text = await r.text();
  if (r.status === 404) {
    Keys.current = { key: k, index: 0, value: null };
    document.getElementById("kv-key").textContent = k;
    document.getElementById("kv-index").textContent = "- (deleted)";
    document.getElementById("kv-value").value = "";
    return;
  }
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = null; }
  if (r.status !== 200 || !body) { Keys.msg("kv-msg", "read failed: " + r.status + " " + text, "error"); return; }
  Keys.current = { key: k, index: KV.etagIndex(r.headers.get("ETag")), value: body[k] };
  Keys.dirty = false;
  document.getElementById("kv-key").textContent = k;
  document.getElementById("kv-index").textContent = String(Keys.current.index);
  document.getElementById("kv-value").value = body[k];
  for (const li of document.querySelectorAll("#keylist li.key"))
    li.classList.toggle("selected", li.dataset.key === k);
};

/* A 412: someone else changed the key since we read it. Shows their
 * value next to ours; ours stays in the box until the user chooses. */
Keys.conflict = async function (k, mine, what) {
  const box = document.getElementById("kv-conflict");
  KV.clear(box);
  let theirs = null, idx = 0;
  try {
    const r = await KV.request("GET", KV.keyPath(k));
    if (r.status === 200) {
      idx = KV.etagIndex(r.headers.get("ETag"));
      theirs = JSON.parse(await r.text())[k];
    }
  } catch (e) { theirs = null; }
  box.appendChild(KV.el("p", null, KV.el("strong", null, "Conflict: "),
    "the key was changed by someone else (now " + (theirs === null ? "deleted" : "index " + idx) +
    ") after you read it at index " + Keys.current.index + ". Your " + what + " was not applied."));
  if (theirs !== null) box.append(KV.el("p", null, "Their value:"), KV.el("pre", { class: "theirs" }, theirs));
  if (mine !== null) box.append(KV.el("p", null, "Your value (still in the box):"), KV.el("pre", { class: "mine" }, mine));
  box.appendChild(KV.el("button", { type: "button", on: { click: () => Keys.show(k) } }, "Load theirs"));
  box.classList.remove("hidden");
  Keys.current.newIndex = idx;
};

Keys.save = async function () {
  const c = Keys.current;
  if (!c) return;
  const v = document.getElementById("kv-value").value;
  const h = c.index ? { "If-Match": '"' + c.index + '"' } : { "If-None-Match": "*" };
  const r = await KV.json("PUT", KV.keyPath(c.key), { headers: h, body: v });
  if (r.status === 412) return Keys.conflict(c.key, v, "edit");
  if (r.status !== 200) return Keys.msg("kv-msg", "save failed: " + r.status + " " + ((r.body && r.body.error) || ""), "error");
  c.index = r.body.index; c.value = v; Keys.dirty = false;
  document.getElementById("kv-index").textContent = String(c.index);
  document.getElementById("kv-conflict").classList.add("hidden");
  Keys.msg("kv-msg", "saved at index " + c.index, "ok");
};

Keys.del = async function () {
  const c = Keys.current;
  if (!c || !c.index) return;
  const r = await KV.json("DELETE", KV.keyPath(c.key), { headers: { "If-Match": '"' + c.index + '"' } });
  if (r.status === 412) return Keys.conflict(c.key, null, "delete");
  if (r.status !== 200) return Keys.msg("kv-msg", "delete failed: " + r.status + " " + ((r.body && r.body.error) || ""), "error");
  Keys.msg("kv-msg", "deleted at index " + r.body.index, "ok");
  c.index = 0;
  document.getElementById("kv-index").textContent = "- (deleted)";
  Keys.load();
};

Keys.create = async function (ev) {
  ev.preventDefault();
  const k = document.getElementById("new-key").value;
  const v = document.getElementById("new-value").value;
  if (!k) return Keys.msg("create-msg", "a key needs a name", "error");
  const r = await KV.json("PUT", KV.keyPath(k), { headers: { "If-None-Match": "*" }, body: v });
  if (r.status === 412) return Keys.msg("create-msg", "not created: the key already exists (index " + r.body.index + ")", "error");
  if (r.status !== 200) return Keys.msg("create-msg", "create failed: " + r.status + " " + ((r.body && r.body.error) || ""), "error");
  Keys.msg("create-msg", "created at index " + r.body.index, "ok");
  document.getElementById("new-key").value = "";
  document.getElementById("new-value").value = "";
  Keys.load();
  Keys.show(k);
};

/* Live updates: one EventSource on /watch for the open prefix. The
 * browser reconnects by itself and sends Last-Event-ID (the index of the
 * last event), so no change in between is missed. */
Keys.watch = function () {
  if (Keys.es) Keys.es.close();
  const url = "/watch?prefix=" + encodeURIComponent(Keys.prefix);
  const es = new EventSource(url);
  Keys.es = es;
  const state = document.getElementById("watch-state");
  es.onopen = () => { state.textContent = "live: watching changes"; };
  es.onerror = () => {
    state.textContent = "live updates interrupted; reconnecting\u2026";
    /* The browser retries by itself unless the answer was not a stream
     * (e.g. 410 compacted, 503 too many watchers): then start afresh
     * from a new listing after a pause. */
    if (es.readyState === EventSource.CLOSED && Keys.es === es) {
      setTimeout(() => { if (Keys.es === es) { Keys.load(); Keys.watch(); } }, 3000);
    }
  };
  es.addEventListener("error", (ev) => { if (ev.data) state.textContent = "watch ended: " + ev.data; });
  es.onmessage = (ev) => {
    let e;
    try { e = JSON.parse(ev.data); } catch (x) { return; }
    if (!e || !e.key) return;
    const c = Keys.current;
    if (c && e.key === c.key && e.index !== c.index) {
      if (Keys.dirty) {
        Keys.msg("kv-msg", "changed by someone else at index " + e.index + " while you edit; saving will show the conflict", "error");
      } else if (e.op === "set") {
        c.index = e.index; c.value = e.value;
        document.getElementById("kv-index").textContent = String(e.index);
        document.getElementById("kv-value").value = e.value;
      } else {
        c.index = 0;
        document.getElementById("kv-index").textContent = "- (deleted)";
      }
    }
    clearTimeout(Keys.reloadTimer);
    Keys.reloadTimer = setTimeout(Keys.load, 200);
  };
};

Keys.start = function (canWrite) {
  Keys.canWrite = canWrite;
  const val = document.getElementById("kv-value");
  if (canWrite) val.removeAttribute("readonly");
  val.addEventListener("input", () => { Keys.dirty = true; });
  document.getElementById("page-next").addEventListener("click", () => {
    if (Keys.more) { Keys.afters.push(Keys.lastOfPage); Keys.load(); }
  });
  document.getElementById("page-prev").addEventListener("click", () => {
    if (Keys.afters.length > 1) { Keys.afters.pop(); Keys.load(); }
  });
  if (canWrite) {
    document.getElementById("kv-save").addEventListener("click", Keys.save);
    document.getElementById("kv-delete").addEventListener("click", Keys.del);
    document.getElementById("create").addEventListener("submit", Keys.create);
  }
  Keys.open("");
};
