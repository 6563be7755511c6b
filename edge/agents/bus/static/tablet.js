// The driver's tablet. Every entry is kept in localStorage until the bus agent has taken it, so
// nothing is lost while the agent restarts; each entry's id is made here, and the agent takes an
// id once, so a resend after a lost answer never counts twice.
"use strict";
const FARES = [
  ["adult", "大人", "Adult"], ["child", "小児", "Child"], ["senior", "高齢者", "Senior"],
  ["disability", "障がい者", "Disability"], ["ticket", "回数券", "Ticket"], ["cash", "現金", "Cash"],
];
const QUEUE = "machimori.tablet.queue";     // entries not yet taken by the agent
const HISTORY = "machimori.tablet.history"; // entries made here, newest last, for undo
const TOKEN = "machimori.tablet.token";
const params = new URLSearchParams(location.search);
if (params.get("token")) localStorage.setItem(TOKEN, params.get("token"));
const load = (key) => JSON.parse(localStorage.getItem(key) || "[]");
let queue = load(QUEUE);
let history = load(HISTORY);
let state = null;         // the agent's last answer to /api/state
let sending = false;

function save() {
  localStorage.setItem(QUEUE, JSON.stringify(queue));
  localStorage.setItem(HISTORY, JSON.stringify(history.slice(-200)));
}

function newId() {  // crypto.randomUUID needs a secure context; a bus LAN is plain http
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = localStorage.getItem(TOKEN);
  if (token) headers["X-Tablet-Token"] = token;
  const response = await fetch(path, body === undefined ? { headers } :
    { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function record(action, fare) {
  const entry = { entry: newId(), action, fare, at: new Date().toISOString(),
                  stop_id: state && state.stop ? state.stop.id : null };
  queue.push(entry);
  history.push({ entry: entry.entry, action, fare });
  save();
  render();
  flush();
}

function undo() {
  const last = history.pop();
  if (!last) return;
  const waiting = queue.findIndex((e) => e.entry === last.entry);
  if (waiting >= 0) queue.splice(waiting, 1);  // never left the tablet: just forget it
  else queue.push({ entry: newId(), action: "undo", target: last.entry,
                    undone: { action: last.action, fare: last.fare }, at: new Date().toISOString() });
  save();
  render();
  flush();
}

async function flush() {
  if (sending || !queue.length) return;
  sending = true;
  const batch = queue.slice(0, 200);
  try {
    const answer = await api("/api/entries", { entries: batch });
    const taken = new Set(answer.accepted);
    queue = queue.filter((e) => !taken.has(e.entry));
    save();
    await refresh();
  } catch (err) {
    online(false);
  } finally {
    sending = false;
    render();
  }
}

async function refresh() {
  try {
    state = await api("/api/state");
    online(true);
  } catch (err) {
    online(false);
  }
  render();
}

function online(ok) {
  const link = document.getElementById("link");
  link.className = ok ? "online" : "offline";
  link.textContent = ok ? "接続中 · Online" : "接続なし · Offline";
}

function counts() {
  // the agent's counts for this trip, plus what is still waiting here
  const out = { board: {}, alight: {} };
  for (const action of ["board", "alight"])
    Object.assign(out[action], state ? state.counts[action] : {});
  const byId = {};
  for (const e of queue) {
    if (e.action === "undo") continue;
    byId[e.entry] = e;
    out[e.action][e.fare] = (out[e.action][e.fare] || 0) + 1;
  }
  for (const e of queue) {
    if (e.action !== "undo" || byId[e.target]) continue;
    const u = e.undone;  // taken by the agent already: its count is in the agent's answer
    out[u.action][u.fare] = Math.max(0, (out[u.action][u.fare] || 0) - 1);
  }
  return out;
}

function render() {
  const c = counts();
  for (const section of document.querySelectorAll("section[data-action]")) {
    const action = section.dataset.action;
    let total = 0;
    for (const [fare] of FARES) {
      const n = c[action][fare] || 0;
      total += n;
      section.querySelector(`button[data-fare=${fare}] .count`).textContent = n;
    }
    document.getElementById(`total-${action}`).textContent = total;
  }
  document.getElementById("pending").textContent = queue.length;
  const stop = state && state.stop;
  document.getElementById("stop-name").textContent = stop ? stop.name : "—";
  document.getElementById("stop-source").textContent =
    state ? (state.stop_source === "driver" ? "(手動 · manual)" : "(GPS)") : "";
  const select = document.getElementById("stop-select");
  const options = state ? state.stops : [];
  if (select.options.length !== options.length + 1) {
    select.length = 1;
    for (const s of options) select.add(new Option(s.name, s.id));
  }
  select.value = state && state.stop_source === "driver" && stop ? stop.id : "";
}

function build() {
  for (const section of document.querySelectorAll("section[data-action]")) {
    const grid = section.querySelector(".grid");
    for (const [fare, ja, en] of FARES) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.fare = fare;
      button.innerHTML = `${ja} <small>${en}</small><span class="count">0</span>`;
      button.addEventListener("click", () => record(section.dataset.action, fare));
      grid.appendChild(button);
    }
  }
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("stop-select").addEventListener("change", async (ev) => {
    try { state = await api("/api/stop", { stop_id: ev.target.value || null }); } catch (err) { online(false); }
    render();
  });
}

build();
render();
refresh();
setInterval(() => { flush(); refresh(); }, 1000);
