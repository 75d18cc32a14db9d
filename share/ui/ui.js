/* ui.js - starts the console: learns the user's rights (POST /ui/rights:
 * 403 means read-only), removes the edit controls of a read-only user,
 * switches between the cluster view and the key browser. */
"use strict";

async function kvRights() {
  try {
    const r = await KV.request("POST", "/ui/rights", { body: "" });
    return r.status !== 403;
  } catch (e) {
    return false;
  }
}

function kvTab(name) {
  for (const t of ["cluster", "keys"]) {
    document.getElementById("view-" + t).classList.toggle("hidden", t !== name);
    document.getElementById("tab-" + t).classList.toggle("active", t === name);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("tab-cluster").addEventListener("click", () => kvTab("cluster"));
  document.getElementById("tab-keys").addEventListener("click", () => kvTab("keys"));
  if (location.hash === "#keys") kvTab("keys");
  Cluster.start();
  const canWrite = await kvRights();
  document.body.dataset.rights = canWrite ? "rw" : "ro";
  document.getElementById("rights").textContent = canWrite ? "read-write" : "read-only";
  if (!canWrite) {
    document.body.classList.add("read-only");
    for (const e of document.querySelectorAll(".needs-write")) e.remove();
  }
  Keys.start(canWrite);
});
