// Tocsin web desk: local times on hover, deadlines counting down, and the
// node's events inserted as they happen. Pinned with the binary; no
// dependencies, no network beyond this node.
"use strict";

function localise(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const at = new Date(t.dateTime);
    if (!isNaN(at)) {
      t.title = t.textContent + " — local time " + at.toLocaleString();
    }
  }
}

function words(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), r = s % 60;
  if (d > 0) return d + " d " + h + " h";
  if (h > 0) return h + " h " + m + " min";
  if (m > 0) return m + " min " + r + " s";
  return r + " s";
}

function countdown() {
  // The node's clock may run on scenario time: count from its reading.
  const clock = document.querySelector(".clock time");
  const skew = clock ? new Date(clock.dateTime) - new Date(performance.timeOrigin) : 0;
  const now = Date.now() + skew;
  for (const c of document.querySelectorAll(".countdown[data-due]")) {
    const left = new Date(c.dataset.due) - now;
    c.textContent = left > 0 ? "(due in " + words(left) + ")" : "(OVERDUE by " + words(left) + ")";
  }
}

function follow() {
  const list = document.getElementById("events");
  if (!list || !window.EventSource) return;
  const state = document.getElementById("live-state");
  const source = new EventSource("/events?after=" + encodeURIComponent(list.dataset.after || "0"));
  source.onopen = () => { state.textContent = "Live: new events appear here as they happen."; };
  source.onerror = () => { state.textContent = "Connection lost; reconnecting (no event will be missed)…"; };
  source.onmessage = (message) => {
    const e = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = "event";
    item.dataset.eventId = String(e.id);
    item.dataset.alertId = e.alert_id;
    const at = document.createElement("time");
    at.dateTime = e.at;
    at.textContent = e.at.replace("T", " ").replace(/\.\d+Z$/, " UTC");
    const kind = document.createElement("strong");
    kind.textContent = " " + e.kind + " ";
    const link = document.createElement("a");
    link.href = "/alerts/" + encodeURIComponent(e.alert_id);
    link.textContent = e.alert_id;
    const detail = document.createElement("span");
    detail.textContent = " " + (e.agency ? e.agency + ": " : "") + e.detail;
    item.append(at, kind, link, detail);
    localise(item);
    list.prepend(item);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  localise(document);
  countdown();
  setInterval(countdown, 1000);
  follow();
});
