/* ui-test.js - drives the web console in headless chromium (playwright-core,
 * Debian's /usr/bin/chromium) against a running 3-node cluster, as a user
 * would, and checks what the page shows against curl-like reads of the
 * API. Run by tests/cluster/ui.sh, which starts and stops the nodes.
 * Env: UI_BASE (http://127.0.0.1:PORT of the leader), UI_RW, UI_RO
 * (USER:PASS), UI_FOLLOWER (its member name), UI_KILL (its PIDs),
 * UI_SHOTS (directory for the screenshots). Prints "ok NAME" / "FAIL NAME:
 * why" lines and figures ("figure ..."); the shell adds them up. */
"use strict";
const { chromium } = require("playwright-core");

const base = process.env.UI_BASE;
const [rwUser, rwPass] = process.env.UI_RW.split(":");
const [roUser, roPass] = process.env.UI_RO.split(":");
const shots = process.env.UI_SHOTS;
let failed = 0;

function ok(name) { console.log("ok " + name); }
function bad(name, why) { console.log("FAIL " + name + ": " + why); failed++; }
function check(name, cond, why) { if (cond) ok(name); else bad(name, why); }

function auth(user, pass) { return "Basic " + Buffer.from(user + ":" + pass).toString("base64"); }
/* The API as curl sees it (not through the page). */
async function api(method, path, body, headers) {
  const r = await fetch(base + path, { method, body,
    headers: Object.assign({ Authorization: auth(rwUser, rwPass) }, headers || {}) });
  return { status: r.status, text: await r.text(), etag: r.headers.get("etag") };
}
async function valueOf(k) {
  const r = await api("GET", "/key/" + encodeURIComponent(k));
  return r.status === 200 ? JSON.parse(r.text)[k] : null;
}
async function until(ms, fn) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if (await fn()) return true; } catch (e) { /* retry */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"], timeout: 60000 });
  try {
    await rwTests(browser);
    await roTests(browser);
  } finally {
    await browser.close();
  }
  console.log("browser: " + (failed ? "failures" : "all checks done"));
  process.exitCode = failed ? 1 : 0;
}

async function rwTests(browser) {
  const ctx = await browser.newContext({ httpCredentials: { username: rwUser, password: rwPass },
                                         viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  let dialogs = 0;
  const cspErrors = [];
  page.on("dialog", (d) => { dialogs++; d.dismiss(); });
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  page.on("pageerror", (e) => bad("page_error", String(e)));
  await page.goto(base + "/ui/");

  const three = await until(15000, async () => (await page.locator("#members tbody tr").count()) === 3);
  check("lists_three_members", three, "rows: " + (await page.locator("#members tbody tr").count()));
  const leaderRows = await page.locator('#members tbody tr[data-role="leader"]').count();
  const leaderName = await page.locator('#members tbody tr[data-role="leader"]').getAttribute("data-member").catch(() => null);
  check("shows_one_leader", leaderRows === 1 && leaderName === "n0", "leader rows " + leaderRows + " name " + leaderName);
  const allOk = await until(10000, async () =>
    (await page.locator('#members tbody tr[data-health="ok"]').count()) === 3);
  check("all_members_healthy", allOk, "not all rows ok");
  await page.waitForTimeout(2500); /* a few chart points */
  await page.screenshot({ path: shots + "/ui-cluster.png", fullPage: true });
  check("no_csp_violations", cspErrors.length === 0, cspErrors.join("; "));

  /* kill a follower: its row turns bad */
  const f = process.env.UI_FOLLOWER;
  const t0 = Date.now();
  for (const pid of process.env.UI_KILL.split(/\s+/).filter(Boolean)) {
    try { process.kill(Number(pid), "SIGKILL"); } catch (e) { /* gone */ }
  }
  const down = await until(10000, async () =>
    (await page.locator(`#members tbody tr[data-member="${f}"]`).getAttribute("data-health", { timeout: 1000 })) === "down");
  const dt = Date.now() - t0;
  console.log("figure ui_follower_shown_down_ms " + dt);
  check("killed_follower_shown_down", down, "not shown down after " + dt + " ms");
  await page.screenshot({ path: shots + "/ui-cluster-down.png", fullPage: true });

  /* a new leader shows as such: hand leadership to n1; the page (on n0,
   * now a follower) marks n1 as leader and still shows the dead one down */
  const t1 = Date.now();
  const tr = await api("POST", "/leader", JSON.stringify({ id: "n1" }));
  const moved = await until(10000, async () =>
    (await page.locator('#members tbody tr[data-role="leader"]').getAttribute("data-member", { timeout: 1000 })) === "n1");
  console.log("figure ui_new_leader_shown_ms " + (Date.now() - t1));
  check("new_leader_shown", moved, "POST /leader " + tr.status + " " + tr.text);
  check("down_seen_from_follower", (await page.locator(`#members tbody tr[data-member="${f}"]`)
    .getAttribute("data-health", { timeout: 1000 })) === "down", "not down on the follower's page");
  await page.screenshot({ path: shots + "/ui-cluster-follower.png", fullPage: true });

  /* key browser: create through the page, read with the API */
  await page.click("#tab-keys");
  await page.fill("#new-key", "ui/k1");
  await page.fill("#new-value", "v1");
  await page.click("#create button[type=submit]");
  const created = await until(8000, async () => (await valueOf("ui/k1")) === "v1");
  check("create_through_page", created, "ui/k1 = " + (await valueOf("ui/k1")));
  await until(5000, async () => (await page.inputValue("#kv-value")) === "v1");
  await page.fill("#kv-value", "v2");
  await page.click("#kv-save");
  const edited = await until(8000, async () => (await valueOf("ui/k1")) === "v2");
  check("edit_through_page", edited, "ui/k1 = " + (await valueOf("ui/k1")));

  /* a stale edit: someone else writes between our read and our save */
  await until(5000, async () => /saved/.test(await page.textContent("#kv-msg")));
  await page.fill("#kv-value", "mine");
  await api("PUT", "/key/" + encodeURIComponent("ui/k1"), "theirs");
  await page.click("#kv-save");
  const shown = await until(8000, async () => await page.locator("#kv-conflict").isVisible());
  const ctext = shown ? await page.textContent("#kv-conflict") : "";
  const theirs = shown ? await page.textContent("#kv-conflict pre.theirs", { timeout: 1000 }).catch(() => null) : null;
  const mine = shown ? await page.textContent("#kv-conflict pre.mine", { timeout: 1000 }).catch(() => null) : null;
  check("stale_edit_shows_conflict", shown && /Conflict/.test(ctext) && theirs === "theirs" && mine === "mine",
        "conflict box: " + ctext + " (theirs " + theirs + ", mine " + mine + ")");
  check("stale_edit_not_applied", (await valueOf("ui/k1")) === "theirs", "ui/k1 = " + (await valueOf("ui/k1")));
  await page.screenshot({ path: shots + "/ui-conflict.png", fullPage: true });

  /* the hostile key renders as its characters */
  const hostile = "<img src=x onerror=alert(1)>";
  await api("PUT", "/key/" + encodeURIComponent(hostile), "<script>alert(2)</script>");
  await page.click("#crumbs button"); /* (all keys) */
  const listed = await until(8000, async () =>
    (await page.locator("#keylist li.key").allTextContents()).includes(hostile));
  check("hostile_key_as_text", listed, "list: " + (await page.locator("#keylist li").allTextContents()).join(" | "));
  await page.locator("#keylist li.key", { hasText: "onerror" }).click();
  await until(5000, async () => (await page.textContent("#kv-key")) === hostile);
  check("hostile_value_as_text", (await page.inputValue("#kv-value")) === "<script>alert(2)</script>" &&
        (await page.textContent("#kv-key")) === hostile, "view: " + (await page.textContent("#kv-key")));
  check("hostile_no_element", (await page.locator("main img, main script").count()) === 0, "an img or script element appeared");
  await page.waitForTimeout(500);
  check("hostile_no_dialog", dialogs === 0, dialogs + " dialogs fired");

  /* a change by someone else appears without a reload (the watch stream) */
  await api("PUT", "/key/live-key", "hello");
  const live = await until(8000, async () =>
    (await page.locator("#keylist li.key").allTextContents()).includes("live-key"));
  check("watch_shows_new_key_live", live, "live-key not listed");
  await page.screenshot({ path: shots + "/ui-keys.png", fullPage: true });

  /* paging: 250 keys under many/ come a page of 100 at a time */
  const batch = {};
  for (let i = 0; i < 250; i++) batch["many/k" + String(i).padStart(3, "0")] = "v" + i;
  await api("POST", "/key", JSON.stringify(batch));
  await until(8000, async () => (await page.locator("#keylist li.folder", { hasText: "many/" }).count()) === 1);
  await page.locator("#keylist li.folder", { hasText: "many/" }).click();
  const p1 = await until(8000, async () => (await page.locator("#keylist li.key").count()) === 100);
  const first1 = p1 ? await page.locator("#keylist li.key").first().textContent() : "";
  await page.click("#page-next");
  await until(8000, async () => (await page.locator("#keylist li.key").first().textContent()) === "k100");
  await page.click("#page-next");
  const p3 = await until(8000, async () => (await page.locator("#keylist li.key").count()) === 50);
  const last3 = p3 ? await page.locator("#keylist li.key").last().textContent() : "";
  check("paging_pages_of_100", p1 && first1 === "k000" && p3 && last3 === "k249" &&
        (await page.isDisabled("#page-next")), "first " + first1 + " last " + last3);
  await ctx.close();
}

async function roTests(browser) {
  const ctx = await browser.newContext({ httpCredentials: { username: roUser, password: roPass } });
  const page = await ctx.newPage();
  await page.goto(base + "/ui#keys"); /* without the slash: the page still loads its files */
  const learnt = await until(10000, async () => (await page.getAttribute("body", "data-rights")) === "ro");
  check("read_only_user_learnt", learnt, "data-rights = " + (await page.getAttribute("body", "data-rights")));
  await until(8000, async () => (await page.locator("#keylist li").count()) > 0);
  /* the root page holds the 250 keys of many/ as one folder: ui/ (after
   * it) is on the same page and there is no next page */
  const rootFolders = await page.locator("#keylist li.folder").allTextContents();
  check("paging_folder_is_one_entry", rootFolders.join(",") === "many/,ui/" &&
        (await page.isDisabled("#page-next")), "root folders: " + rootFolders.join(","));
  await page.locator("#keylist li.key", { hasText: "live-key" }).click();
  await until(5000, async () => (await page.textContent("#kv-key")) === "live-key");
  const ctrls = await page.locator("#create, #kv-save, #kv-delete, .needs-write").count();
  check("read_only_no_edit_controls", ctrls === 0, ctrls + " edit controls");
  check("read_only_value_readonly", (await page.getAttribute("#kv-value", "readonly")) !== null, "value box editable");
  const st = await page.evaluate(async () =>
    (await fetch("/key/live-key", { method: "PUT", body: "x" })).status);
  check("read_only_write_403", st === 403, "PUT as reader: " + st);
  await page.screenshot({ path: shots + "/ui-keys-readonly.png", fullPage: true });
  await ctx.close();
}

main().catch((e) => { console.log("FAIL browser: " + (e && e.stack || e)); process.exitCode = 1; });
