// Tocsin federation view: local times on hover, the live part of the page
// replaced as the scenario plays (server-sent events), and the scrubber
// showing the federation at the chosen instant without a reload. Pinned
// with the binary; no dependencies, no network beyond the view.
"use strict";

function localise(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const at = new Date(t.dateTime);
    if (!isNaN(at)) {
      t.title = t.textContent + " — local time " + at.toLocaleString();
    }
  }
}

function follow() {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const state = document.getElementById("live-state");
  const concluded = !!document.getElementById("postmortem");
  const source = new EventSource("/events");
  source.onopen = () => {
    if (!concluded) state.textContent = "Live: the picture follows the scenario as it plays.";
  };
  source.onerror = () => {
    if (!concluded) state.textContent = "Connection lost; reconnecting…";
  };
  source.onmessage = (message) => {
    const e = JSON.parse(message.data);
    if (e.concluded && !concluded) {
      // The post-mortem is in: the page that shows it is the server's.
      window.location.reload();
      return;
    }
    live.innerHTML = e.live;
    live.dataset.version = String(e.version);
    localise(live);
  };
}

function scrubber() {
  const form = document.getElementById("scrubber");
  const range = document.getElementById("scrub");
  const target = document.getElementById("scrubbed");
  if (!form || !range || !target) return;
  let asked = 0;
  const show = async () => {
    const at = range.value;
    const mine = ++asked;
    range.setAttribute("aria-valuetext", "item " + (Number(at) + 1) + " of " + (Number(range.max) + 1));
    const answer = await fetch("/scrub?at=" + encodeURIComponent(at), { credentials: "same-origin" });
    if (!answer.ok || mine !== asked) return;
    target.innerHTML = await answer.text();
    localise(target);
    history.replaceState(null, "", "/?at=" + encodeURIComponent(at));
  };
  range.addEventListener("input", show);
  form.addEventListener("submit", (e) => { e.preventDefault(); show(); });
}

document.addEventListener("DOMContentLoaded", () => {
  localise(document);
  follow();
  scrubber();
});
