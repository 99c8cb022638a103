"use strict";
// jetmq dashboard: hash routes (#/jobs, #/job/<id>, #/members) and live refresh. The page
// polls the API every second; when the master offers server-sent events (/api/events), it
// also refreshes at once on each "changed" event and polls less often.

const POLL_MS = 1000, POLL_WITH_EVENTS_MS = 3000, POLL_HIDDEN_MS = 5000;
let eventsLive = false, timer = null, running = false, again = false, visit = 0, tick = 0;

function route() {
  const hash = location.hash || "#/jobs";
  const job = hash.match(/^#\/job\/(.+)$/);
  if (job) return {page: "job", id: decodeURIComponent(job[1])};
  return {page: hash.startsWith("#/members") ? "members" : "jobs"};
}

function showLive(text, bad) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.classList.toggle("down", !!bad);
}

function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.hidden = !text;
  banner.textContent = text || "";
}

function problem(error) {
  if (error.status === 401 || error.status === 403) {
    return "Not authorized: this master asks for a token. Open the dashboard as http://HOST:PORT/?token=<token>.";
  }
  if (error.status) return `The master answered ${error.message}. Retrying…`;
  return `Cannot reach the master (${error.message}). Retrying…`;
}

async function refresh() {
  if (running) { again = true; return; }
  running = true;
  clearTimeout(timer);
  const here = route(), root = document.getElementById("page"), mine = visit;
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (here.page === "job" ? "jobs" : here.page));
  }
  try {
    if (here.page === "job") await Pages.job(root, here.id);
    else if (here.page === "members") await Pages.members(root);
    else await Pages.jobs(root);
    if (here.page !== "members" && tick++ % 5 === 0) Pages.showCluster(await api("/cluster"));
    showBanner("");
    showLive(eventsLive ? "live · events" : "live · polling", false);
    document.body.dataset.refreshed = String(Date.now());
  } catch (error) {
    if (mine === visit) showBanner(problem(error));
    showLive("offline", true);
  } finally {
    running = false;
    if (again) { again = false; refresh(); return; }
    const wait = document.hidden ? POLL_HIDDEN_MS : (eventsLive ? POLL_WITH_EVENTS_MS : POLL_MS);
    timer = setTimeout(refresh, wait);
  }
}

function listen() {
  if (!window.EventSource) return;
  const events = new EventSource(apiUrl("/events"));
  const changed = () => refresh();
  events.onopen = () => { eventsLive = true; };
  events.onmessage = changed;
  events.addEventListener("changed", changed);
  events.onerror = () => {  // a master without events (404) closes the stream for good: polling goes on
    eventsLive = false;
    if (events.readyState === EventSource.CLOSED) events.close();
  };
}

window.addEventListener("hashchange", () => {
  visit++;
  document.getElementById("page").dataset.frame = "";
  document.getElementById("page").__html = undefined;
  document.getElementById("page").innerHTML = `<p class="muted">loading…</p>`;
  refresh();
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
listen();
refresh();
