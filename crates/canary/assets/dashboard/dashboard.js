// The monitoring page: a server-sent event stream (/api/stream) feeds the
// charts and the rollout panel once a second; EventSource reconnects by itself
// when the connection drops. Slow-changing tables are polled.
"use strict";
const KEEP = 300; // points per chart: the past (a point per 5 s) and then a point a second
const data = { t: [], s_rps: [], c_rps: [], s_err: [], c_err: [], s_p95: [], c_p95: [], s_p50: [], c_p50: [], s_p99: [], c_p99: [], share: [] };
const css = (v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim();
let thresholds = { error_rate: 1, rollback_error_rate: 5, p95: 200, rollback_p95: 1000 };
const charts = {};

function series(label, color, dash) { return { label, stroke: color, width: 2, dash, spanGaps: true, points: { show: false } }; }
function shareMarks(u) {
  // Vertical lines where the share changed: the moments a step began.
  const ctx = u.ctx, t = u.data[0], sh = data.share;
  ctx.save(); ctx.strokeStyle = css("--muted"); ctx.setLineDash([4, 4]);
  for (let i = 1; i < t.length; i++) {
    if (sh[i] !== sh[i - 1]) {
      const x = Math.round(u.valToPos(t[i], "x", true));
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.fillStyle = css("--muted"); ctx.fillText(sh[i] + "%", x + 3, u.bbox.top + 12);
    }
  }
  ctx.restore();
}
function make(id, lines) {
  const el = document.getElementById(id);
  const opts = { width: el.clientWidth || 300, height: 180, series: [{}].concat(lines), axes: [{ stroke: css("--muted") }, { stroke: css("--muted") }], hooks: { draw: [shareMarks] }, points: { show: false } };
  return new uPlot(opts, [[]].concat(lines.map(() => [])), el);
}
function build() {
  const st = css("--stable"), ca = css("--canary"), bad = css("--bad");
  charts.rps = make("c-rps", [series("stable", st), series("canary", ca)]);
  charts.err = make("c-err", [series("stable", st), series("canary", ca), series("advance below", css("--good"), [6, 4]), series("rollback above", bad, [6, 4])]);
  charts.p95 = make("c-p95", [series("stable", st), series("canary", ca), series("advance below", css("--good"), [6, 4]), series("rollback above", bad, [6, 4])]);
  charts.lat = make("c-lat", [series("stable p50", st, [2, 2]), series("canary p50", ca, [2, 2]), series("stable p99", st), series("canary p99", ca)]);
}
function add(m) {
  const v = (x) => (x === null || x === undefined ? null : x);
  data.t.push(m.t / 1000); data.share.push(m.share);
  for (const [k, arm] of [["s", m.stable], ["c", m.canary]]) {
    data[k + "_rps"].push(v(arm.rps)); data[k + "_err"].push(v(arm.error_rate));
    data[k + "_p95"].push(v(arm.p95)); data[k + "_p50"].push(v(arm.p50)); data[k + "_p99"].push(v(arm.p99));
  }
  for (const k in data) if (data[k].length > KEEP) data[k].shift();
}
function draw() {
  const n = data.t.length, same = (x) => new Array(n).fill(x);
  charts.rps.setData([data.t, data.s_rps, data.c_rps]);
  charts.err.setData([data.t, data.s_err, data.c_err, same(thresholds.error_rate), same(thresholds.rollback_error_rate)]);
  charts.p95.setData([data.t, data.s_p95, data.c_p95, same(thresholds.p95), same(thresholds.rollback_p95)]);
  charts.lat.setData([data.t, data.s_p50, data.c_p50, data.s_p99, data.c_p99]);
}
// The stream's first frame brings the charts' past (a point per 5 s of the
// last ten minutes): a page opened mid-rollout shows the step so far. After
// a reconnect, only the points newer than the page's last fill the gap.
function push(m) {
  const last = () => (data.t.length ? data.t[data.t.length - 1] : -Infinity);
  for (const p of m.history || []) if (p.t < m.t && p.t / 1000 > last()) add(p);
  add(m);
  draw();
}
function text(id, s) { document.getElementById(id).textContent = s; }
function rows(id, list, cells, click) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...list.map((x) => {
    const tr = document.createElement("tr");
    for (const c of cells(x)) { const td = document.createElement("td"); td.textContent = c === null || c === undefined ? "–" : String(c); tr.appendChild(td); }
    if (click) { tr.className = "link"; tr.title = "show its requests in the request log"; tr.onclick = () => click(x); }
    return tr;
  }));
}
// The request log's panel: what `canary logs` lists, for the filter last
// chosen (a failing criterion: the canary's failures; an error: its path).
let logsQuery = { since: "10m" };
function logsCommand(q) {
  return "canary logs " + Object.entries(q).map(([k, v]) => (k === "errors" ? "--errors" : "--" + k.replace("_", "-") + " " + v)).join(" ");
}
async function loadLogs() {
  const p = new URLSearchParams({ ...logsQuery, limit: "20", scope: "fleet" });
  const r = await (await fetch("/api/v2/logs?" + p)).json();
  text("logs-cmd", logsCommand(logsQuery));
  rows("logs", (r.records || []).slice().reverse(), (e) => [new Date(e.time_ms).toLocaleTimeString(), e.version, e.method + " " + e.path, e.status, Math.round(e.duration_us / 100) / 10, e.request_id, e.cause]);
  document.querySelectorAll("#logs tbody tr").forEach((tr, i) => { if ((r.records || []).slice().reverse()[i].cause) tr.classList.add("failed"); });
}
function showLogs(q) {
  logsQuery = q;
  loadLogs().catch(() => {});
  document.getElementById("request-log").scrollIntoView({ behavior: "smooth" });
}
function panel(m) {
  const st = document.getElementById("state"); st.textContent = m.state; st.className = "state " + m.state;
  text("share", m.share + "%");
  const r = m.rollout;
  text("step", r ? r.step + " / " + r.steps : "–");
  text("left", r && ["progressing", "holding", "paused"].includes(m.state) ? Math.round(r.time_left_seconds) + " s" : "–");
  text("reason", r && r.reason ? r.reason : "");
  cluster(m.cluster);
  const v = r && (r.verdict || r.rollback_check);
  rows("verdict", v ? v.criteria : [], (c) => [c.name, c.value === null ? null : Math.round(c.value * 100) / 100, Math.round(c.threshold * 100) / 100, c.outcome],
    () => showLogs({ version: "canary", errors: "true", since: "10m" }));
  document.querySelectorAll("#verdict td:last-child").forEach((td) => (td.className = td.textContent));
}
// With several replicas: who leads, and when each was last heard from.
function cluster(c) {
  const el = document.getElementById("cluster");
  el.hidden = !c;
  if (!c) return;
  text("cluster-leader", c.leader ? "leader " + c.leader + (c.etcd_error ? " — " + c.etcd_error : "") : "no leader: " + (c.etcd_error || "election under way"));
  rows("replicas", c.replicas || [], (r) => [r.id + (r.id === c.leader ? " (leader)" : "") + (r.id === c.node ? " (this page)" : ""), r.admin, r.last_seen_ms === null ? "–" : r.last_seen_ms + " ms ago"]);
}
function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/api/stream");
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
  es.onerror = () => { conn.textContent = "connection lost: retrying…"; conn.className = "conn lost"; };
  es.onmessage = (e) => { const m = JSON.parse(e.data); thresholds = m.thresholds || thresholds; text("rollout-name", m.rollout_name || ""); push(m); panel(m); document.body.dataset.share = m.share; };
}
// S22 at a glance: rollbacks, canary requests that failed in front of users
// (not replayed on stable), and how p95 moves release to release.
function summaryLine(s) {
  if (!s.rollouts || s.rollouts.length === 0) return "";
  const t = s.trend || {};
  const p95 = t.p95_ms ? "; p95 after promotion " + Math.round(t.p95_ms[0]) + " → " + Math.round(t.p95_ms[1]) + " ms" : "";
  return s.promoted + " promoted, " + s.rolled_back + " rolled back; " + s.requests_lost + " of " + s.canary_requests + " canary requests failed for users; p95 no worse in " + s.better_p95 + " of " + s.compared + " promotions" + p95;
}
async function poll() {
  try {
    const m = await (await fetch("/api/v2/metrics?window=10m")).json();
    const routes = Object.entries(m.response_time || {}).sort((a, b) => b[1] - a[1]).slice(0, 5);
    rows("routes", routes, (r) => [r[0], Math.round(r[1] * 100) / 100]);
    rows("errors", (m.recent_errors || []).slice(0, 10), (e) => [new Date(e.at_ms).toLocaleTimeString(), e.version, e.method + " " + e.path, e.status, e.error],
      (e) => showLogs({ version: e.version, path: e.path, since: "30m" }));
    await loadLogs();
    const h = await (await fetch("/api/rollouts?limit=10")).json();
    const s = await (await fetch("/api/rollouts/summary?last=10")).json();
    const byId = Object.fromEntries((s.rollouts || []).map((e) => [e.id, e]));
    const change = (e, k, unit) => { const f = (x) => (x && x[k] !== null && x[k] !== undefined ? Math.round(x[k] * 10) / 10 : "–"); return e ? f(e.before) + " → " + f(e.after) + " " + unit : null; };
    rows("history", h.rollouts || [], (r) => [r.id, r.state, r.canary, byId[r.id] ? byId[r.id].requests_lost : null, change(byId[r.id], "p95_ms", "ms"), change(byId[r.id], "error_rate", "%"), r.reason]);
    text("indicators", summaryLine(s));
  } catch (e) { /* the stream's status shows the connection */ }
}
// Actions: shown to anyone logged in; the server decides (a viewer is refused).
let session = { role: null, csrf: "" };
async function loadSession() {
  try { session = await (await fetch("/admin/session")).json(); } catch (e) { return; }
  text("who", session.role ? session.role : "");
  document.getElementById("actions").hidden = !session.role;
}
async function act(name) {
  const body = {};
  if (name === "adjust") body.share = Number(document.getElementById("adjust-share").value);
  if (name === "rollback" || name === "pause") body.reason = "from the dashboard";
  const what = name === "adjust" ? "set the share to " + body.share + "%" : name;
  if (!window.confirm("Really " + what + "?")) return;
  const r = await fetch("/api/rollout/" + name, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": session.csrf }, body: JSON.stringify(body) });
  const v = await r.json().catch(() => ({}));
  const out = document.getElementById("action-result");
  out.textContent = r.ok ? name + ": done, now " + v.state + " at " + v.share + "%" : name + " refused (" + r.status + "): " + (v.message || "");
  out.className = r.ok ? "reason pass" : "reason fail";
}
document.querySelectorAll("#actions button[data-act]").forEach((b) => b.addEventListener("click", () => act(b.dataset.act)));
build(); connect(); poll(); loadSession(); setInterval(poll, 5000);
// Charts follow their panel's width, so the page fits a phone as well as a laptop.
function fit() { for (const k in charts) { const box = charts[k].root.closest(".chart"); charts[k].setSize({ width: Math.max(200, box.clientWidth - 22), height: 180 }); } }
window.addEventListener("resize", fit);
fit();
