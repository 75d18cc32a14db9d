/* cluster.js - the cluster view: every member of the node's /status with
 * its role, indexes, lag, last contact, peer link and health, refreshed
 * once a second, the charts of /metrics and the log and snapshot sizes. */
"use strict";

const Cluster = {
  windowMs: 5 * 60 * 1000,
  samples: [],        /* {t, commit, reads} from /metrics */
  rates: { writes: [], reads: [], commit: [] },
  lastOk: 0,
  busy: false,
};

/* One member's row, from the node's /status (st) and /metrics (m). The
 * node serving the page knows itself fully; as leader it knows each
 * follower's match index, whether it answered lately ("active") and when
 * it last heard from it ("last_heard_ms"); its
 * metrics say whether its outbound link to a peer is up (keyval_peer_up). */
Cluster.member = function (st, m, n) {
  const r = { id: n.id, haddr: n.haddr || "", role: "follower", term: "-", commit: "-",
              applied: "-", lag: "-", contact: "-", link: "-", health: "unknown", why: "" };
  if (!n.voter) r.role = "learner";
  if (n.id === st.leader) r.role = "leader";
  const et = st.election_timeout_ms || 500;
  const up = m['keyval_peer_up{peer="' + n.id + '"}'];
  if (n.self) {
    if (st.state === "candidate") r.role = "candidate";
    r.term = st.term; r.commit = st.commit_index; r.applied = st.applied_index;
    r.lag = st.commit_index - st.applied_index;
    r.contact = st.state === "leader" ? "self (leader)" : KV.ago(st.last_contact_ms);
    r.link = "this node";
    if (st.removed) { r.health = "bad"; r.why = "removed"; }
    else if (!st.leader) { r.health = "bad"; r.why = "no leader known"; }
    else if (st.state !== "leader" && st.last_contact_ms > et) {
      r.health = "bad"; r.why = "leader silent " + KV.ago(st.last_contact_ms);
    } else if (r.lag > 100) { r.health = "bad"; r.why = "applied lags"; }
    else r.health = "ok";
    return r;
  }
  r.link = up === undefined ? "-" : up ? "up" : "down";
  if (st.state === "leader") {
    r.term = st.term;
    r.commit = n.match !== undefined ? "match " + n.match : "-";
    r.lag = n.match !== undefined ? Math.max(0, st.last_log_index - n.match) : "-";
    r.contact = n.last_heard_ms !== undefined ? KV.ago(n.last_heard_ms)
              : n.active ? "< " + et + " ms" : "no answer";
    if (up === 0 || n.active === false) { r.health = "down"; r.why = up === 0 ? "link down" : "not answering"; }
    else if (typeof r.lag === "number" && r.lag > 100) { r.health = "bad"; r.why = "lags " + r.lag; }
    else r.health = "ok";
  } else {
    if (n.id === st.leader) r.contact = KV.ago(st.last_contact_ms);
    if (up === 0) { r.health = "down"; r.why = "link down"; }
    else if (n.id === st.leader && st.last_contact_ms > et) { r.health = "down"; r.why = "leader silent"; }
    else if (up === 1) r.health = "ok";
  }
  return r;
};

Cluster.render = function (st, m) {
  const tbody = document.querySelector("#members tbody");
  KV.clear(tbody);
  for (const n of st.nodes || []) {
    const r = Cluster.member(st, m, n);
    const health = r.health + (r.why ? " (" + r.why + ")" : "");
    tbody.appendChild(KV.el("tr", { class: "health-" + r.health + " role-" + r.role,
                                    data: { member: r.id, role: r.role, health: r.health } },
      KV.el("td", { class: "name" }, r.id + (n.self ? " (this node)" : "")),
      KV.el("td", { class: "role" }, r.role), KV.el("td", null, r.term),
      KV.el("td", null, r.commit), KV.el("td", null, r.applied), KV.el("td", null, r.lag),
      KV.el("td", null, r.contact), KV.el("td", null, r.link),
      KV.el("td", { class: "health" }, health), KV.el("td", null, r.haddr)));
  }
  document.getElementById("members-note").textContent = st.state === "leader"
    ? "Seen from the leader " + st.id + ": lag = entries a follower has not stored yet."
    : "Seen from " + st.id + " (" + st.state + "): other members' indexes are known to the leader " +
      (st.leader_haddr ? "(its console: http(s)://" + st.leader_haddr + "/ui/)" : "") + ".";
  document.getElementById("node").textContent =
    st.id + " \u00b7 " + st.state + " \u00b7 term " + st.term + " \u00b7 leader " + (st.leader || "none");
  const sizes = document.querySelector("#sizes tbody");
  KV.clear(sizes);
  const rows = [
    ["log entries", (st.last_log_index - st.first_log_index + 1) + " (" + st.first_log_index + ".." + st.last_log_index + ")"],
    ["log size", KV.bytes(m.keyval_log_bytes)],
    ["snapshot index", st.snapshot_index + " (every " + st.snapshot_every + " entries)"],
    ["snapshots taken / installed", (m.keyval_snapshots_taken_total || 0) + " / " + (m.keyval_snapshots_installed_total || 0)],
    ["change history rows", st.history_rows],
    ["SQLite memory", KV.bytes(m.keyval_sqlite_memory_bytes)],
    ["watchers / waiting queries", st.watchers + " / " + st.waiting_queries],
  ];
  for (const [k, v] of rows) sizes.appendChild(KV.el("tr", null, KV.el("th", null, k), KV.el("td", null, String(v))));
};

Cluster.chart = function (m) {
  const t = Date.now();
  const s = { t: t, commit: m.keyval_commit_index, reads: m.keyval_reads_total };
  const prev = Cluster.samples[Cluster.samples.length - 1];
  Cluster.samples.push(s);
  if (prev && t > prev.t) {
    const dt = (t - prev.t) / 1000;
    Cluster.rates.writes.push({ t: t, v: Math.max(0, (s.commit - prev.commit) / dt) });
    Cluster.rates.reads.push({ t: t, v: Math.max(0, (s.reads - prev.reads) / dt) });
  }
  Cluster.rates.commit.push({ t: t, v: s.commit });
  const cut = t - Cluster.windowMs;
  for (const k of Object.keys(Cluster.rates)) Cluster.rates[k] = Cluster.rates[k].filter((p) => p.t >= cut);
  Cluster.samples = Cluster.samples.slice(-2);
  KV.drawChart(document.getElementById("chart-writes"), Cluster.rates.writes, Cluster.windowMs, "#1f5fa8");
  KV.drawChart(document.getElementById("chart-reads"), Cluster.rates.reads, Cluster.windowMs, "#1b7f3b");
  KV.drawChart(document.getElementById("chart-commit"), Cluster.rates.commit, Cluster.windowMs, "#8a4fbf");
};

Cluster.banner = function (text) {
  const b = document.getElementById("banner");
  b.textContent = text || "";
  b.classList.toggle("hidden", !text);
};

Cluster.tick = async function () {
  if (Cluster.busy) return;
  Cluster.busy = true;
  try {
    const [st, mt] = await Promise.all([
      KV.json("GET", "/status", { timeout: 2500 }),
      KV.request("GET", "/metrics", { timeout: 2500 }).then((r) => (r.ok ? r.text() : "")),
    ]);
    if (st.status !== 200 || !st.body) throw new Error("/status answered " + st.status);
    const m = KV.parseMetrics(mt);
    Cluster.lastOk = Date.now();
    Cluster.banner(st.body.leader ? "" : "No leader known: writes and linearizable reads are refused.");
    Cluster.render(st.body, m);
    if (mt) Cluster.chart(m);
  } catch (e) {
    Cluster.banner("This node does not answer (" + (e.message || e) + "); last good answer " +
                   KV.ago(Date.now() - Cluster.lastOk) + " ago.");
    for (const tr of document.querySelectorAll("#members tbody tr")) {
      tr.className = "health-unknown"; tr.dataset.health = "unknown";
    }
  } finally {
    Cluster.busy = false;
  }
};

Cluster.start = function () {
  Cluster.tick();
  setInterval(Cluster.tick, 1000);
};
