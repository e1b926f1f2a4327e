// The CCOC console: alert queue (live over server-sent events), actions with reasons, a tile-free SVG map,
// camera health, search, the supervisor's activity trail and the KPI page. Plain JavaScript, no framework.
// Every value from the server is put into the page as text (never as HTML).
"use strict";

const T = {
  en: {queue: "Queue", cameras: "Cameras", search: "Search", activity: "Activity", kpi: "KPI", logout: "Log out",
       login_title: "Log in with your token", token: "API token", login: "Log in", new: "New",
       in_progress: "In progress", decided: "Decided, not closed", acknowledge: "Take", confirm: "Confirm",
       dismiss: "Dismiss", assign: "Send unit", close: "Close", reason: "reason", camera: "camera",
       score: "score", subject: "match", online: "online", offline: "offline", since: "since",
       search_ph: "plate or warrant no.", when: "when", who: "who", what: "what", alert: "alert",
       community: "community", month: "month", fear: "fear of crime %", confidence: "confidence in police %",
       respondents: "respondents", target: "target", no_surveys: "No People Poll results in the twin yet.",
       legend: "● camera (green online, red offline, grey: not streamed here) ■ SOS pole ◆ QR box (red: missed) ▲ alert ◉ unit",
       held_by: "held by", unit: "unit", record: "record", st_new: "new", st_acknowledged: "taken",
       st_confirmed: "confirmed", st_dismissed: "dismissed", unknown: "not streamed here", gate: "gate pass",
       dropped: "dropped", "last error": "last error", kind: "kind", state: "state", fps: "fps", bad_token: "Unknown token", median: "median time to decision (s)",
       more: "Show more", showing: "open alerts loaded (most urgent first):", map_capped: "most urgent alerts drawn:", evidence: "evidence crop", no_crop: "evidence crop missing",
       offline: "Cannot reach the API: retrying… (the queue may be out of date)",
       session_ended: "Your session has ended (token expired or revoked): log in again.",
       failed: "failed", hint_net: "The API cannot be reached: check the network, then press again (a repeated action is applied once).",
       hint_403: "Your role may not do this: ask a supervisor.",
       hint_409: "Another operator holds or decided this alert: ask them or a supervisor before acting on it.",
       hint_422: "Fill in what is missing (a dismissal needs a reason code), then press again.",
       hint_other: "Press again in a moment (a repeated action is applied once).",
       logout_kept: "You are still logged in: press Log out again in a moment."},
  th: {queue: "คิวแจ้งเตือน", cameras: "กล้อง", search: "ค้นหา", activity: "ประวัติการทำงาน", kpi: "ตัวชี้วัด",
       logout: "ออกจากระบบ", login_title: "เข้าสู่ระบบด้วยโทเค็น", token: "โทเค็น API", login: "เข้าสู่ระบบ",
       new: "ใหม่", in_progress: "กำลังดำเนินการ", decided: "ตัดสินแล้ว ยังไม่ปิด", acknowledge: "รับเรื่อง",
       confirm: "ยืนยัน", dismiss: "ยกเลิก", assign: "ส่งสายตรวจ", close: "ปิดเรื่อง", reason: "เหตุผล",
       camera: "กล้อง", score: "คะแนน", subject: "ตรงกับ", online: "ออนไลน์", offline: "ขัดข้อง",
       since: "ตั้งแต่", search_ph: "ทะเบียนรถ หรือ เลขหมายจับ", when: "เวลา", who: "ผู้ดำเนินการ",
       what: "การดำเนินการ", alert: "แจ้งเตือน", community: "ชุมชน", month: "เดือน", fear: "ความหวาดกลัวอาชญากรรม %",
       confidence: "ความเชื่อมั่นต่อตำรวจ %", respondents: "ผู้ตอบ", target: "เป้าหมาย",
       no_surveys: "ยังไม่มีผลโพลในฐานข้อมูล", held_by: "ผู้รับเรื่อง", unit: "หน่วย",
       unknown: "ไม่มีข้อมูลสตรีม", record: "รายการ", st_new: "ใหม่", st_acknowledged: "รับเรื่องแล้ว",
       st_confirmed: "ยืนยันแล้ว", st_dismissed: "ยกเลิกแล้ว", gate: "ผ่านตัวกรองการเคลื่อนไหว", dropped: "เฟรมที่ทิ้ง",
       "last error": "ข้อผิดพลาดล่าสุด", kind: "ประเภท", state: "สถานะ", fps: "เฟรม/วินาที",
       legend: "● กล้อง (เขียว ออนไลน์ แดง ขัดข้อง เทา ไม่มีข้อมูล) ■ เสา SOS ◆ ตู้แดง QR (แดง: ขาดการตรวจ) ▲ แจ้งเตือน ◉ สายตรวจ",
       bad_token: "โทเค็นไม่ถูกต้อง", median: "เวลาตัดสินใจ (มัธยฐาน วินาที)",
       more: "แสดงเพิ่ม", showing: "แจ้งเตือนที่โหลด (เร่งด่วนที่สุดก่อน):", map_capped: "แสดงแจ้งเตือนเร่งด่วนที่สุด:", evidence: "ภาพหลักฐาน", no_crop: "ไม่พบภาพหลักฐาน",
       offline: "เชื่อมต่อ API ไม่ได้ กำลังลองใหม่… (รายการอาจไม่เป็นปัจจุบัน)",
       session_ended: "เซสชันสิ้นสุดแล้ว (โทเค็นหมดอายุหรือถูกเพิกถอน) กรุณาเข้าสู่ระบบใหม่",
       failed: "ไม่สำเร็จ", hint_net: "เชื่อมต่อ API ไม่ได้: ตรวจสอบเครือข่าย แล้วกดอีกครั้ง (กดซ้ำได้ ระบบบันทึกครั้งเดียว)",
       hint_403: "สิทธิ์ของคุณทำรายการนี้ไม่ได้: ติดต่อหัวหน้าเวร",
       hint_409: "ผู้ปฏิบัติงานคนอื่นรับหรือตัดสินเรื่องนี้แล้ว: สอบถามผู้นั้นหรือหัวหน้าเวรก่อนดำเนินการ",
       hint_422: "กรอกข้อมูลที่ขาด (การยกเลิกต้องเลือกเหตุผล) แล้วกดอีกครั้ง",
       hint_other: "รอสักครู่แล้วกดอีกครั้ง (กดซ้ำได้ ระบบบันทึกครั้งเดียว)",
       logout_kept: "คุณยังอยู่ในระบบ: รอสักครู่แล้วกดออกจากระบบอีกครั้ง"},
};
const RANK = {analyst: 1, operator: 2, supervisor: 3, admin: 4};
const MAP_MAX = 1000;  // alert markers drawn at most, the most urgent (every one, 100k polygons an event, stalled the tab)
const PAGE = 200;  // cards drawn per list before a "more" button: redrawing 2,000 cards on each live event took ~1 s
const S = {lang: localStorage.getItem("ssz-lang") || "th", me: null, alerts: new Map(), map: null, proj: null,
           live: null, arrived: null, loadSeq: 0, fails: 0, drawQueued: false, drafts: new Map(),
           shown: {new: PAGE, progress: PAGE, decided: PAGE},
           counts: null,  // the server's open alerts by status {total, counts, version}: the badges
           failed: new Map()};  // alert_id -> {action, status, message} of its last failed action, until one succeeds

const $ = (id) => document.getElementById(id);
const t = (k) => (T[S.lang] && T[S.lang][k]) || T.en[k] || k;
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") e.textContent = v; else if (k === "cls") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function svg(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
async function api(path, opts = {}) {
  const headers = Object.assign({"X-SSZ-Console": "1"}, opts.body ? {"Content-Type": "application/json"} : {});
  const r = await fetch(path, Object.assign({credentials: "same-origin", headers}, opts));
  const body = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
  if (r.status === 401 && S.me) { S.me = null; location.reload(); }  // token expired or revoked: log in again
  if (!r.ok) { const err = new Error((body && body.error && body.error.message) || r.statusText); err.status = r.status; throw err; }
  return body;
}
function status(msg) { $("status").textContent = msg; }
function can(role) { return S.me && RANK[S.me.role] >= RANK[role]; }
// The command room's clock (Asia/Bangkok, Thai calendar in Thai), whatever zone the browser's machine is set to;
// one formatter per language (making one per alert took seconds for a long queue).
const CLOCK = {};
function localTime(iso) {
  if (!iso) return "";
  const locale = S.lang === "th" ? "th-TH" : "en-GB";
  CLOCK[locale] ||= new Intl.DateTimeFormat(locale, {timeZone: "Asia/Bangkok", year: "numeric", month: "numeric",
    day: "numeric", hour: "numeric", minute: "numeric", second: "numeric"});
  return CLOCK[locale].format(new Date(iso));
}
// How long to wait before the next try after `n` failures in a row: 1 s doubling up to 60 s, drawn at random from
// the upper half (after an API restart every console retried a full reload on the same 3 s beat, forever).
function backoff(n) { const ms = Math.min(60000, 1000 * 2 ** n); return ms / 2 + Math.random() * ms / 2; }
// Screen readers hear a message once, from the one live region (#announce, role=alert): the cards are drawn anew
// on every live event, and a role=alert element drawn anew is read out again each time.
function announce(msg) {
  const a = $("announce"); a.textContent = "";
  setTimeout(() => { a.textContent = msg; }, 50);  // emptied first, so the same message twice is read twice
}
function offline(down) {  // the banner saying the API cannot be reached (the page keeps retrying by itself)
  document.body.dataset.stream = down ? "reconnecting" : "live";
  $("offline").hidden = !down;
}

function applyLang() {
  document.documentElement.lang = S.lang;
  $("lang").textContent = S.lang === "th" ? "EN" : "ไทย";
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = e.ariaLabel = t(e.dataset.i18nPh); });
  renderQueue();
}

// ------------------------------------------------------------------ log-in
async function start(tries = 0) {
  $("lang").onclick = () => { S.lang = S.lang === "th" ? "en" : "th"; localStorage.setItem("ssz-lang", S.lang); applyLang(); };
  $("login-form").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await api("/console/login", {method: "POST", body: JSON.stringify({token: $("token").value})});
      localStorage.setItem("ssz-session", "1"); location.reload();
    } catch (e) { $("login-error").textContent = (e.status === 401 ? t("bad_token") + ": " : "") + e.message; }
  };
  $("logout").onclick = async () => {
    try { await api("/console/logout", {method: "POST"}); }
    catch (e) {  // the cookie is still set: said beside the button (a blocking dialog stopped the whole console)
      const msg = `${t("logout")} ${t("failed")}: ${e.status ? e.message : t("hint_net")} — ${t("logout_kept")}`;
      const box = $("logout-error"); box.textContent = msg; box.hidden = false; status(msg); announce(msg);
      return;
    }
    localStorage.removeItem("ssz-session"); location.reload();
  };
  try { S.me = await api("/console/me"); }
  catch (e) {
    applyLang();
    if (e.status !== 401) { offline(true); setTimeout(() => start(tries + 1), backoff(tries)); return; }  // down or busy
    offline(false); $("login").hidden = false;
    if (localStorage.getItem("ssz-session")) { $("login-error").textContent = t("session_ended"); localStorage.removeItem("ssz-session"); }
    return;
  }
  $("who").textContent = `${S.me.user} (${S.me.role}) · ${S.me.station_th}`;
  $("who").dataset.role = S.me.role;
  $("title").textContent = `CCOC ${S.me.name_th} / ${S.me.name}`;
  $("tabs").hidden = false; $("logout").hidden = false;
  document.querySelectorAll("[data-min-role]").forEach((b) => { if (!can(b.dataset.minRole)) b.remove(); });
  document.querySelectorAll("#tabs button").forEach((b) => { b.onclick = () => showTab(b.dataset.tab); });
  showTab("queue");
  applyLang();
  openStream();  // the queue is loaded each time the stream opens
  mapUntilLoaded();
  setInterval(refreshLive, 2000);
}

async function mapUntilLoaded(tries = 0) {  // a map that failed to load is tried again (it left the console dead)
  try { await loadMap(); refreshLive(); }
  catch (e) { status("map: " + e.message); setTimeout(() => mapUntilLoaded(tries + 1), backoff(tries)); }
}

function showTab(name) {
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== name; });
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  if (name === "cameras") renderCameras();
  if (name === "activity") loadActivity();
  if (name === "kpi") loadKpi();
}

// ------------------------------------------------------------------ alerts
async function loadAlerts() {  // true once the page is applied, false if a newer load took over; errors thrown
  // The page is fetched while the stream may already deliver alerts (loadAlerts runs again when the stream opens):
  // events that arrive during the fetch are newer than the page and are laid over it, and only the latest load
  // applies its page. Replacing the map with the page alone dropped an SOS pressed while the page was on its way.
  const seq = ++S.loadSeq;
  const arrived = S.arrived = new Map();
  let q;  // one snapshot of the open queue, the most urgent up to the server's cap (offset pages skipped alerts)
  try { q = await api("/console/queue"); }
  catch (e) { if (seq === S.loadSeq) S.arrived = null; throw e; }
  if (seq !== S.loadSeq) return false;
  const capped = $("queue-capped"); capped.hidden = q.total <= q.items.length;
  capped.textContent = `${t("showing")} ${q.items.length} / ${q.total}`;
  S.alerts = new Map(q.items.map((a) => [a.alert_id, a]));
  setCounts(q);
  for (const [id, a] of arrived) S.alerts.set(id, Object.assign(S.alerts.get(id) || {}, a));
  S.arrived = null;
  renderQueue(); drawAlerts();
  return true;
}

// Load the queue (the stream is open); while it fails the banner stays on and the load is tried again with back-off.
async function syncQueue() {
  const seq = S.loadSeq + 1;
  try {
    if (!(await loadAlerts())) return;
    S.fails = 0; offline(false); status("stream: live");
  } catch (e) {
    offline(true); status(`queue: ${e.message}`);
    setTimeout(() => { if (S.loadSeq === seq) syncQueue(); }, backoff(S.fails++));
  }
}

function remember(a) {  // an alert or update from the stream while loadAlerts fetches its page
  if (S.arrived) S.arrived.set(a.alert_id, Object.assign(S.arrived.get(a.alert_id) || {}, a));
}

function openStream() {
  const es = new EventSource("/v1/alerts:stream");
  es.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data); a.fresh = true; S.alerts.set(a.alert_id, a); remember(a); renderQueue(); drawAlerts();
    if (a.priority === 0) beep();
    status(`${t("alert")}: ${a.kind} ${a.camera_id}`);
  });
  es.addEventListener("update", (ev) => {
    const a = JSON.parse(ev.data); S.alerts.set(a.alert_id, Object.assign(S.alerts.get(a.alert_id) || {}, a));
    remember(a); renderQueue(); drawAlerts();
  });
  es.addEventListener("counts", (ev) => setCounts(JSON.parse(ev.data), true));
  es.onerror = () => {
    offline(true); status("stream: reconnecting…");
    // The browser retries by itself after a dropped connection but gives up for good on an HTTP error (a 502 or
    // 503 while the API restarts): open a new stream then, or the queue silently stops updating.
    if (es.readyState === EventSource.CLOSED) setTimeout(openStream, backoff(S.fails++));
  };
  es.onopen = syncQueue;  // "live" only once the queue is loaded
}

function beep() {  // a short tone for high-priority alerts (SOS)
  try {
    const ctx = new AudioContext(); const o = ctx.createOscillator(); const g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = 0.1; o.connect(g); g.connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.4);
  } catch (e) { /* no audio device */ }
}

function urgentFirst(a, b) { return (a.priority - b.priority) || (a.ts < b.ts ? 1 : -1); }  // then newest first

function renderQueue() {
  if (!S.me) return;
  const lists = {new: $("list-new"), progress: $("list-progress"), decided: $("list-decided")};
  const kept = keepControls();
  const f = document.activeElement && document.activeElement.closest("li[data-alert]");
  const focused = f && f.dataset.alert;
  Object.values(lists).forEach((l) => l.replaceChildren());
  const items = [...S.alerts.values()].filter((a) => a.state !== "closed")
    .sort(urgentFirst);
  const open = new Set(items.map((a) => a.alert_id));
  for (const id of S.drafts.keys()) if (!open.has(id)) S.drafts.delete(id);
  for (const id of S.failed.keys()) if (!open.has(id)) S.failed.delete(id);
  const groups = {new: [], progress: [], decided: []};
  for (const a of items) groups[a.status === "new" ? "new" : a.status === "acknowledged" ? "progress" : "decided"].push(a);
  for (const [where, group] of Object.entries(groups)) {
    // the card being typed on or holding a draft is drawn even when newer alerts push it past "Show more"
    const drawn = group.filter((a, i) => i < S.shown[where] || S.drafts.has(a.alert_id) || a.alert_id === focused);
    for (const a of drawn) lists[where].append(card(a));
    const left = group.length - drawn.length;
    if (left > 0) {
      const more = el("button", {type: "button", "data-testid": `more-${where}`, text: `${t("more")} (${left})`});
      more.onclick = () => {  // focus the first card now shown (it fell to <body> when the button went)
        const first = S.shown[where]; S.shown[where] += PAGE; renderQueue();
        const li = lists[where].children[first]; if (li) { li.tabIndex = -1; li.focus(); }
      };
      lists[where].append(el("li", {cls: "more"}, more));
    }
  }
  drawCounts();
  kept();
}

// The badges count every open alert the server has (a page holds at most the 2,000 most urgent; counting the
// loaded cards said 2000 with 5,000 open). The counts come with the queue's snapshot and after each batch of live
// events (the stream's `counts` event, computed by the sink once per batch for all consoles, so an SOS burst does
// not make every console fetch again). The stream's counts come in the order the sink took them (one connection,
// one replica; a new connection loads the queue again): each replaces the last. The version (the sink's clock)
// settles only the race between the snapshot and the stream: a count older than the snapshot it follows, or a
// snapshot older than the stream's last count, is dropped. Comparing stream counts by version too froze the
// badges after a restarted sink whose clock was behind the old one's.
function setCounts(c, live = false) {
  if (!c || !c.counts) return;
  const v = c.version || 0;
  if (S.counts && v < S.counts.version && !(live && S.counts.live)) return;
  S.counts = {total: c.total, counts: c.counts, version: v, live};
  drawCounts();
}
function drawCounts() {
  const n = (S.counts && S.counts.counts) || {};
  $("count-new").textContent = n.new || 0; $("count-progress").textContent = n.acknowledged || 0;
  $("count-decided").textContent = (n.confirmed || 0) + (n.dismissed || 0);
}

// The queue is drawn anew on every live event: what the operator typed or chose on a card (a reason, a dismissal
// code, a unit) and the focus must survive it, or the next SOS silently resets a dismissal code to the first one.
// Drafts are kept by alert (S.drafts: alert_id -> {control's data-testid: value}) as they are typed, so a card
// pushed past "Show more" keeps them too (they lived only from one redraw to the next).
function draft(ev) {
  const c = ev.target, li = c.closest && c.closest(".alerts li[data-alert]");
  if (!li || !c.dataset.testid) return;
  const d = S.drafts.get(li.dataset.alert) || {};
  if (c.tagName === "SELECT" ? c.selectedIndex > 0 : c.value) d[c.dataset.testid] = c.value; else delete d[c.dataset.testid];
  if (Object.keys(d).length) S.drafts.set(li.dataset.alert, d); else S.drafts.delete(li.dataset.alert);
}
document.addEventListener("input", draft);
document.addEventListener("change", draft);

function keepControls() {
  const f = document.activeElement;
  const focus = f && f.closest(".alerts") && f.dataset.testid;
  const range = focus && f.tagName === "INPUT" ? [f.selectionStart, f.selectionEnd] : null;
  return () => {
    const find = (id) => document.querySelector(`.alerts [data-testid="${CSS.escape(id)}"]`);
    for (const d of S.drafts.values()) for (const [id, v] of Object.entries(d)) { const c = find(id); if (c) c.value = v; }
    const c = focus && find(focus);
    if (c) { c.focus({preventScroll: true}); if (range) c.setSelectionRange(...range); }
  };
}

function card(a) {
  const li = el("li", {cls: `k-${a.kind}` + (a.fresh ? " fresh" : ""), "data-alert": a.alert_id, "data-status": a.status});
  a.fresh = false;
  if (a.evidence_key) {  // a crop that cannot be fetched says so (it showed a broken-image icon)
    const img = el("img", {src: `/v1/alerts/${encodeURIComponent(a.alert_id)}/evidence`, alt: t("evidence")});
    img.onerror = () => img.replaceWith(el("span", {cls: "no-crop", text: t("no_crop")}));
    li.append(img);
  }
  const d = a.details || {};
  li.append(el("div", {}, el("strong", {text: `${a.kind.toUpperCase()} `}), a.place || a.camera_id,
                el("span", {cls: "state", text: ` · ${t("st_" + a.status)}${a.assigned_unit ? " → " + a.assigned_unit : ""}`})));
  li.append(el("div", {cls: "meta", text: [localTime(a.ts), `${t("camera")} ${a.camera_id}`,
    a.score != null ? `${t("score")} ${Number(a.score).toFixed(2)}` : null,
    a.subject_id ? `${t("subject")} ${a.subject_id}` : null, d.text || null,
    a.status_by ? `${t("held_by")} ${a.status_by.replace(/^api:/, "")}` : null,
    a.status_reason ? `${t("reason")}: ${a.status_reason}` : null,
    a.assigned_unit ? `${t("unit")} ${a.assigned_unit}` : null].filter(Boolean).join(" · ")}));
  if (a.procedure) li.append(el("div", {cls: "proc", text: a.procedure}));
  const held = a.status !== "new" && a.status_by && a.status_by !== `api:${S.me.user}`;
  if (can("operator") && !held) li.append(actions(a));
  const f = S.failed.get(a.alert_id);  // said on the card until an action on it succeeds (it was an alert() box)
  if (f) li.append(el("p", {cls: "error action-error", id: `error-${a.alert_id}`, "data-testid": `error-${a.alert_id}`,
                            text: failure(f)}));
  return li;
}

// What failed and what to do, in the page's language: the API's message says what was wrong (it names who
// holds the alert, or the reason codes), the hint what to do; a request that never got an answer has no status.
function failure(f) {
  if (!f.status) return `${t(f.action)} ${t("failed")}: ${t("hint_net")}`;
  const hint = [403, 409, 422].includes(f.status) ? t(`hint_${f.status}`) : t("hint_other");
  return `${t(f.action)} ${t("failed")}: ${f.message || `HTTP ${f.status}`} — ${hint}`;  // a proxy's page over HTTP/2: no text
}

function actions(a) {
  const box = el("div", {cls: "actions"});
  const id = a.alert_id;
  const reason = el("input", {"data-testid": `reason-${id}`, placeholder: t("reason"), "aria-label": t("reason"),
                              maxlength: "200"});
  const btn = (action, cls, extra) => {
    const b = el("button", {type: "button", cls, "data-testid": `${action}-${id}`, "data-action": action, text: t(action),
                            "aria-describedby": S.failed.has(id) ? `error-${id}` : null});
    b.onclick = () => act(id, action, extra ? extra() : {reason: reason.value || null});
    return b;
  };
  if (a.status === "new") box.append(btn("acknowledge"));
  if (a.status === "new" || a.status === "acknowledged") {
    box.append(reason, btn("confirm", "confirm"));
    const sel = el("select", {"data-testid": `dismiss-reason-${id}`, "aria-label": `${t("dismiss")}: ${t("reason")}`});
    // no code until one is picked (the API refuses a dismissal without one); Dismiss sent the first code unasked
    sel.append(el("option", {value: "", text: `— ${t("reason")} —`}));
    for (const r of S.me.dismiss_reasons) sel.append(el("option", {value: r, text: r}));
    box.append(sel, btn("dismiss", "dismiss", () => ({reason: sel.value})));
  }
  if (a.status !== "dismissed" && !a.closed_ts) {
    const units = el("select", {"data-testid": `unit-${id}`, "aria-label": t("unit")});
    for (const u of [...S.me.units, ...S.me.mobile_cameras]) units.append(el("option", {value: u, text: u}));
    box.append(units, btn("assign", null, () => ({unit: units.value})));
  }
  if (a.status === "confirmed" || a.status === "dismissed") box.append(btn("close"));
  return box;
}

// A refused or failed action is said on the alert's card (and read out once), not in a blocking alert() box that
// took the operator away from the queue; the redraw keeps the focus and what was typed or chosen (keepControls).
async function act(id, action, body) {
  try {
    const rec = await api(`/v1/alerts/${encodeURIComponent(id)}:${action}`, {method: "POST", body: JSON.stringify(body)});
    if (S.failed.delete(id)) $("announce").textContent = "";  // no stale failure left for a screen reader to find
    S.alerts.set(id, Object.assign(S.alerts.get(id) || {}, rec)); renderQueue(); drawAlerts();
    status(`${action}: ${id}`);
  } catch (e) {
    const f = {action, status: e.status, message: e.message};
    S.failed.set(id, f); renderQueue();
    const msg = failure(f); status(`${id}: ${msg}`); announce(msg);
  }
}

// ------------------------------------------------------------------ map (SVG, no tiles)
async function loadMap() {
  S.map = await api("/console/map");
  const [w, s, e, n] = S.map.bbox;
  const k = Math.cos(((s + n) / 2) * Math.PI / 180);
  const scale = 1000 / Math.max((e - w) * k, n - s);
  S.proj = (lon, lat) => [((lon - w) * k * scale).toFixed(1), ((n - lat) * scale).toFixed(1)];
  const m = $("map");
  m.setAttribute("viewBox", `0 0 ${((e - w) * k * scale).toFixed(0)} ${((n - s) * scale).toFixed(0)}`);
  m.replaceChildren();
  const d = S.map.streets.map((line) => "M" + line.map(([x, y]) => S.proj(x, y).join(",")).join("L")).join("");
  m.append(svg("path", {d, stroke: "#3a4757", "stroke-width": "1.2", fill: "none", id: "streets"}));
  m.append(svg("polygon", {points: S.map.zone.map(([x, y]) => S.proj(x, y).join(",")).join(" "), fill: "#3f6fb015",
                           stroke: "#3f6fb0", "stroke-width": "2", "stroke-dasharray": "6 4", id: "zone"}));
  const cams = svg("g", {id: "cams"});
  for (const c of S.map.cameras) {
    const [x, y] = S.proj(c.lon, c.lat);
    cams.append(svg("circle", {cx: x, cy: y, r: 2.5, fill: "#4cd07d", "data-camera": c.id}));
  }
  const places = svg("g", {id: "places"});
  for (const p of S.map.places) {
    const [x, y] = S.proj(p.lon, p.lat);
    if (p.kind === "sos") places.append(svg("rect", {x: x - 6, y: y - 6, width: 12, height: 12, fill: "#ff3b3b", "data-place": p.id}));
    else if (p.kind === "qr") places.append(svg("rect", {x: x - 4, y: y - 4, width: 8, height: 8, fill: "#ffd400",
                                                         transform: `rotate(45 ${x} ${y})`, "data-place": p.id}));
  }
  m.append(cams, places, svg("g", {id: "alerts-layer"}), svg("g", {id: "units"}));
  drawAlerts();
}

function drawAlerts() {  // once a frame, however many live events came meanwhile
  if (S.drawQueued) return;
  S.drawQueued = true;
  requestAnimationFrame(() => { S.drawQueued = false; drawAlertsNow(); });
}

function drawAlertsNow() {
  const g = $("alerts-layer"); if (!g || !S.proj) return;
  g.replaceChildren();
  const open = [...S.alerts.values()].filter((a) => a.lon != null && a.state !== "closed" && a.status !== "dismissed");
  if (open.length > MAP_MAX) {  // say that some are not drawn
    const note = svg("text", {x: 10, y: 20, fill: "#ffd400", "font-size": "16", "data-testid": "map-capped"});
    note.textContent = `${t("map_capped")} ${MAP_MAX} / ${open.length}`; g.append(note);
  }
  for (const a of open.sort(urgentFirst).slice(0, MAP_MAX)) {
    const [x, y] = S.proj(a.lon, a.lat);
    const col = a.status === "new" ? "#ff3b3b" : a.status === "confirmed" ? "#ffd400" : "#ff9a3b";
    g.append(svg("polygon", {points: `${x},${y - 9} ${x - 8},${y + 6} ${x + 8},${y + 6}`, fill: col, stroke: "#000",
                             "data-alert-marker": a.alert_id}));
  }
}

async function refreshLive() {
  if (!S.proj) return;
  let live;
  try { live = await api("/console/live"); } catch (e) { status("live: " + e.message); return; }
  S.live = live;
  document.querySelectorAll("#cams circle").forEach((c) => {
    const st = live.streamed[c.dataset.camera];
    const down = live.offline[c.dataset.camera] || (st && st.health === "offline");
    c.setAttribute("fill", down ? "#ff3b3b" : st ? "#4cd07d" : "#7f8b99");
    if (st) c.setAttribute("r", 4);
  });
  document.querySelectorAll("#places rect").forEach((r) => {
    const q = live.qr[r.dataset.place]; if (q) r.setAttribute("fill", q.missed ? "#ff3b3b" : "#4cd07d");
  });
  const g = $("units"); g.replaceChildren();
  for (const [id, u] of Object.entries(live.units)) {
    if (u.trail.length > 1) g.append(svg("polyline", {points: u.trail.map(([x, y]) => S.proj(x, y).join(",")).join(" "),
                                                      fill: "none", stroke: "#5ab0ff", "stroke-width": "2", "data-trail": id}));
    const [x, y] = S.proj(u.lon, u.lat);
    g.append(svg("circle", {cx: x, cy: y, r: 7, fill: "#5ab0ff", stroke: "#fff", "stroke-width": "2", "data-unit": id,
                            "data-lon": u.lon, "data-lat": u.lat}));
    const label = svg("text", {x: Number(x) + 9, y: Number(y) - 9, fill: "#cfe6ff", "font-size": "14"});
    label.textContent = id; g.append(label);
  }
  if (!$("cameras").hidden) renderCameras();
}

function renderCameras() {
  const tb = $("camera-table"); if (!S.map) return;
  tb.replaceChildren(el("tr", {}, ...["camera", "kind", "state", "since", "fps", "gate", "dropped", "last error"]
    .map((k) => el("th", {text: t(k)}))));
  const off = (S.live && S.live.offline) || {};
  const live = (S.live && S.live.streamed) || {};
  const rank = (c) => (off[c.id] ? 0 : live[c.id] ? 1 : 2);
  const cams = [...S.map.cameras].sort((a, b) => (rank(a) - rank(b)) || a.id.localeCompare(b.id));
  for (const c of cams.slice(0, 400)) {
    const o = off[c.id], st = live[c.id];
    const down = o || (st && st.health === "offline");
    const num = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
    tb.append(el("tr", {"data-camera-row": c.id}, el("td", {text: c.id}), el("td", {text: c.kind}),
                 el("td", {cls: down ? "bad" : st ? "ok" : "", text: down ? t("offline") : st ? (st.health || t("online")) : t("unknown")}),
                 el("td", {text: o ? localTime(o.since) : ""}), el("td", {text: st ? num(st.fps_decoded, 1) : "–"}),
                 el("td", {text: st ? num(st.gate_pass_ratio, 2) : "–"}), el("td", {text: st ? num(st.dropped, 0) : "–"}),
                 el("td", {text: (st && st.last_error) || ""})));
  }
}

// ------------------------------------------------------------------ search, activity, KPI
document.addEventListener("submit", async (ev) => {
  if (ev.target.id !== "search-form") return;
  ev.preventDefault();
  const out = $("search-results"); out.replaceChildren();
  try {
    const r = await api(`/console/search?q=${encodeURIComponent($("q").value)}`);
    const sec = (title, rows, fmt) => { out.append(el("h3", {text: `${title} (${rows.length})`})); const ul = el("ul"); rows.forEach((x) => ul.append(el("li", {text: fmt(x)}))); out.append(ul); };
    sec(t("alert"), r.alerts, (a) => `${localTime(a.ts)} ${a.kind} ${a.subject_id || ""} @ ${a.camera_id} — ${a.status}`);
    sec("warrants", r.warrants, (w) => `${w.warrant_no} ${w.name || ""} — ${w.offence}`);
    sec("hotlist", r.hotlist, (h) => `${h.id} ${h.plate_text || h.plate || ""} — ${h.reason || ""}`);
  } catch (e) { out.append(el("p", {cls: "error", text: e.message})); }
});

async function loadActivity() {
  const tb = $("activity-table");
  const r = await api("/console/activity");
  tb.replaceChildren(el("tr", {}, el("th", {text: t("when")}), el("th", {text: t("who")}), el("th", {text: t("what")}),
                           el("th", {text: t("record")}), el("th", {text: t("reason")})));
  for (const e of r.events) {
    tb.append(el("tr", {"data-log": e.log}, el("td", {text: localTime(e.ts)}), el("td", {text: e.actor}),
                 el("td", {text: e.action}), el("td", {text: `${e.log}: ${e.subject}`}),
                 el("td", {text: (e.details && (e.details.reason || e.details.unit)) || ""})));
  }
}

async function loadKpi() {
  const box = $("kpi-body"); box.replaceChildren();
  const r = await api("/console/kpi");
  box.append(el("p", {text: `${t("target")}: ${t("fear")} < ${r.targets.fear_of_crime_pct_below}, ${t("confidence")} > ${r.targets.confidence_in_police_pct_above}`}));
  if (!r.surveys.length) box.append(el("p", {text: t("no_surveys")}));
  else {
    const tb = el("table", {id: "kpi-table"});
    tb.append(el("tr", {}, ...["community", "month", "respondents", "fear", "confidence"].map((k) => el("th", {text: t(k)}))));
    for (const s of r.surveys) {
      tb.append(el("tr", {}, el("td", {text: s.community}), el("td", {text: s.month}), el("td", {text: s.respondents}),
                   el("td", {cls: s.fear_ok ? "ok" : "bad", text: s.fear_of_crime_pct.toFixed(1)}),
                   el("td", {cls: s.confidence_ok ? "ok" : "bad", text: s.confidence_in_police_pct.toFixed(1)})));
    }
    box.append(tb);
  }
  const at = el("table", {id: "kpi-alerts"});
  at.append(el("tr", {}, el("th", {text: t("kind")}), el("th", {text: t("state")}), el("th", {text: t("median")})));
  for (const [kind, states] of Object.entries(r.alerts)) {
    at.append(el("tr", {}, el("td", {text: kind}), el("td", {text: Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ")}),
                 el("td", {text: r.median_decision_s[kind] ?? "–"})));
  }
  box.append(el("h3", {text: t("alert")}), at);
}

document.addEventListener("DOMContentLoaded", start);
