"use strict";
// jetmq dashboard: the three pages. Each `render` fetches what it shows and fills #page.

const Pages = (() => {
  const details = new Map();  // job id -> its last describe document (finished jobs: fetched once)
  const MAX_DESCRIBED = 30;   // the jobs page describes at most this many jobs per refresh
  let logsMissingUntil = 0;   // the server has no logs endpoint: ask again after this time

  function frame(root, ids) {  // the page's sections, made once per visit so refreshes only swap contents
    if (root.dataset.frame !== ids.join(",")) {
      root.innerHTML = ids.map(id => `<section id="${id}"></section>`).join("");
      root.dataset.frame = ids.join(",");
      root.__html = undefined;
    }
    return Object.fromEntries(ids.map(id => [id, document.getElementById(id)]));
  }

  // ---------------------------------------------------------------- jobs

  async function describeJobs(jobs) {
    const wanted = jobs.slice(0, MAX_DESCRIBED).filter(j => !(TERMINAL.has(j.status) && details.get(j.id)?.status === j.status));
    await Promise.allSettled(wanted.map(j => api(`/jobs/${encodeURIComponent(j.id)}`).then(doc => details.set(j.id, doc))));
  }

  async function jobs(root) {
    const listed = (await api("/jobs")).jobs || [];
    await describeJobs(listed);
    const s = frame(root, ["jobs-summary", "jobs-table"]);
    const counts = {};
    for (const j of listed) counts[j.status] = (counts[j.status] || 0) + 1;
    setHTML(s["jobs-summary"], `<h1>Jobs</h1><p class="muted">${listed.length ? Object.entries(counts)
      .map(([status, n]) => `${n} ${esc(status.toLowerCase())}`).join(" · ") : "no jobs yet: submit one with <code>jet submit</code>"}</p>`);
    const rows = listed.map(j => {
      const doc = details.get(j.id);
      const guarantee = j.processing_guarantee ?? doc?.processing_guarantee;
      const restarts = j.restarts ?? doc?.restarts;
      const rate = j.throughput !== undefined ? j.throughput : (j.status === "RUNNING" ? throughput(doc) : null);
      const reason = j.failure_text ? failureReason(doc?.failure, j.failure_text) : "";
      const href = `#/job/${encodeURIComponent(j.id)}`;
      return `<tr class="job" data-job-id="${esc(j.id)}" data-job-name="${esc(j.name || "")}">` +
        `<td><a href="${href}">${esc(j.name || "(no name)")}</a></td><td class="mono"><a href="${href}">${esc(j.id)}</a></td>` +
        `<td>${statusBadge(j.status)}</td><td>${esc(guarantee ?? "–")}</td><td>${esc(fmtTime(j.submission_time))}</td>` +
        `<td>${esc(fmtDuration(uptime(j, doc)))}</td><td class="num">${esc(restarts ?? "–")}</td>` +
        `<td class="num">${esc(fmtRate(rate))}</td></tr>` +
        (reason ? `<tr class="reason ${j.status === "FAILED" ? "bad" : "warn"}" data-job-id="${esc(j.id)}"><td></td>` +
          `<td colspan="7" class="failure-reason">${esc(reason)}</td></tr>` : "");
    });
    setHTML(s["jobs-table"], listed.length ? table(
      ["Name", "ID", "Status", "Guarantee", "Submitted", "Uptime", "Restarts", "Throughput"], rows, 'id="jobs"') : "");
  }

  // ---------------------------------------------------------------- one job

  function facts(pairs) {
    return `<dl class="facts">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd data-fact="${esc(k)}">${v}</dd>`).join("")}</dl>`;
  }

  function logLine(entry) {
    if (typeof entry === "string") return entry;
    const time = entry.time ?? entry.timestamp;
    const text = entry.line ?? entry.message ?? entry.text ?? JSON.stringify(entry);
    return [time != null ? `${fmtTime(time)}.${String(time % 1000).padStart(3, "0")}` : "", entry.member ? `[${String(entry.member).slice(0, 8)}]` : "", text]
      .filter(Boolean).join(" ");
  }

  async function logs(id) {
    if (Date.now() < logsMissingUntil) return `<p class="muted">this master serves no logs (see <code>jet logs</code>)</p>`;
    try {
      const found = await api(`/jobs/${encodeURIComponent(id)}/logs?tail=100`);
      const lines = typeof found === "string" ? found.split("\n").filter(Boolean)
        : (Array.isArray(found) ? found : found.lines || found.logs || []).map(logLine);
      return lines.length ? `<pre class="logs">${esc(lines.join("\n"))}</pre>` : `<p class="muted">no log lines yet</p>`;
    } catch (error) {
      if (error.status === 404 || error.status === 501) {
        logsMissingUntil = Date.now() + 10000;
        return `<p class="muted">this master serves no logs (see <code>jet logs</code>)</p>`;
      }
      return `<p class="bad">logs: ${esc(error.message)}</p>`;
    }
  }

  async function job(root, id) {
    let doc;
    try {
      doc = await api(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status !== 404) throw error;
      setHTML(root, `<h1>Job ${esc(id)}</h1><p class="bad">No job with name or id '${esc(id)}' was found.</p>`);
      root.dataset.frame = "";
      return;
    }
    const logText = await logs(id);
    details.set(doc.id, doc);
    const s = frame(root, ["job-head", "job-failure", "job-dag", "job-vertices", "job-executions",
      "job-failures", "job-members", "job-logs"]);
    const metrics = doc.metrics || {};
    const restarts = doc.restarts ?? 0, executions = doc.executions || [];
    setHTML(s["job-head"], `<h1>${esc(doc.name || "(no name)")} ${statusBadge(doc.status)}</h1>` + facts([
      ["ID", `<span class="mono">${esc(doc.id)}</span>`],
      ["Processing guarantee", esc(doc.processing_guarantee)],
      ["Submitted", esc(fmtTime(doc.submission_time))],
      ["Completed", esc(fmtTime(doc.completion_time))],
      ["Uptime", esc(fmtDuration(uptime(doc, doc)))],
      ["Throughput", esc(fmtRate(doc.status === "RUNNING" ? throughput(doc) : null))],
      ["Executions", `${esc(executions.length)} (${esc(restarts)} restart${restarts === 1 ? "" : "s"})`],
      ["Last snapshot", esc(doc.last_snapshot_id >= 0 ? doc.last_snapshot_id : "none") +
        (doc.snapshot_in_progress >= 0 ? ` (taking ${esc(doc.snapshot_in_progress)})` : "")],
    ]));
    const f = doc.failure;
    setHTML(s["job-failure"], f ? `<div class="failure-box ${doc.status === "FAILED" ? "bad" : "warn"}">` +
      `<strong>${doc.status === "FAILED" ? "Failed" : "Failure"}:</strong> <span class="failure-reason">${esc(failureReason(f))}</span>` +
      (f.where ? `<div class="muted">in ${esc(f.where)}</div>` : "") +
      (f.text && f.text !== failureReason(f) ? `<details><summary>failure text</summary><pre>${esc(f.text)}</pre></details>` : "") +
      `</div>` : "");
    const byName = new Map((metrics.vertices || []).map(v => [v.name, v]));
    const metricsNote = metrics.state === "reported" ? `metrics of ${esc(fmtTime(metrics.timestamp))}, summed over the members`
      : esc(metrics.note || "no metrics");
    setHTML(s["job-dag"], `<h2>DAG</h2><p class="muted">${metricsNote}</p>` +
      (doc.dag ? `<div class="dag-wrap">${Dag.render(doc.dag, byName)}</div>` : `<p class="muted">the server sent no DAG</p>`));
    setHTML(s["job-vertices"], byName.size ? `<h2>Vertices</h2>` + table(["Vertex", "Items in", "Items out", "Rate", "Queues"],
      [...byName.values()].map(v => `<tr data-vertex="${esc(v.name)}"><td>${esc(v.name)}</td><td class="num">${esc(fmtCount(v.items_in))}</td>` +
        `<td class="num">${esc(fmtCount(v.items_out))}</td><td class="num">${esc(fmtRate(v.rate))}</td><td class="num">` +
        (v.queue_capacity ? `${esc(fmtCount(v.queue_size))}/${esc(fmtCount(v.queue_capacity))} ` +
          `(${Math.round(100 * v.queue_size / v.queue_capacity)}%)` : "–") + `</td></tr>`)) : "");
    setHTML(s["job-executions"], `<h2>Executions</h2>` + (executions.length ? table(["#", "ID", "Started", "Ended", "Members", "How", "Why"],
      executions.slice().reverse().map(e => `<tr><td>${esc(e.number)}</td><td class="mono">${esc(e.id)}</td>` +
        `<td>${esc(fmtTime(e.start_time))}</td><td>${esc(fmtTime(e.end_time))}</td><td class="num">${esc((e.members || []).length)}</td>` +
        `<td>${statusBadge(e.ended || "RUNNING")}</td><td>${esc(e.reason || "")}</td></tr>`)) : `<p class="muted">none yet</p>`));
    const failures = doc.failures || [];
    setHTML(s["job-failures"], failures.length ? `<h2>Failures of the job's code</h2>` + table(["Time", "Then", "Cause"],
      failures.slice().reverse().map(x => `<tr class="bad"><td>${esc(fmtTime(x.time))}</td><td>${esc(x.then)}</td><td>${esc(x.cause)}</td></tr>`)) : "");
    setHTML(s["job-members"], `<h2>Members</h2>` + ((doc.members || []).length ? table(["Address", "UUID", "PID"],
      doc.members.map(m => `<tr><td>${m.address ? esc(m.address) : `<span class="muted">(gone)</span>`}</td>` +
        `<td class="mono">${esc(m.uuid)}</td><td class="num">${esc(m.pid ?? "–")}</td></tr>`)) : `<p class="muted">none</p>`));
    setHTML(s["job-logs"], `<h2>Recent logs</h2>` + logText);
  }

  // ---------------------------------------------------------------- members

  function heartbeatAge(m) {
    if (m.heartbeat_age_ms != null) return m.heartbeat_age_ms;
    if (m.heartbeat_age_s != null) return m.heartbeat_age_s * 1000;
    if (m.heartbeat_age != null) return m.heartbeat_age * 1000;
    return null;
  }

  async function members(root) {
    const doc = await api("/cluster");
    showCluster(doc);
    const s = frame(root, ["members-head", "members-table", "members-notes"]);
    setHTML(s["members-head"], `<h1>Members</h1>` + facts([
      ["Cluster", esc(doc.cluster_name)], ["State", esc(doc.state)], ["Version", esc(doc.version)], ["Size", esc(doc.size)],
      ...(doc.master ? [["Master", `pid ${esc(doc.master.pid)} on ${esc(doc.master.host)}` +
        (doc.master.cpu_percent == null ? "" : ` · CPU ${esc(doc.master.cpu_percent.toFixed(1))} % · RSS ${esc(fmtBytes(doc.master.rss_bytes))}`)]] : [])]));
    setHTML(s["members-table"], table(["Address", "UUID", "PID", "Host", "CPU", "RSS", "Heartbeat", "Restarts"],
      (doc.members || []).map(m => {
        const age = heartbeatAge(m), cpu = m.cpu_percent ?? m.cpu;
        return `<tr class="member" data-uuid="${esc(m.uuid)}"><td class="address">${esc(m.address)}</td>` +
          `<td class="mono">${esc(m.uuid)}</td><td class="num">${esc(m.pid ?? "–")}</td>` +
          `<td>${esc(m.host ?? "")}${m.forked === false ? " (joined)" : ""}</td>` +
          `<td class="num">${cpu == null ? "–" : esc(Number(cpu).toFixed(1) + " %")}</td>` +
          `<td class="num">${esc(fmtBytes(m.rss_bytes ?? m.rss))}</td>` +
          `<td class="num${age != null && age > 2000 ? " warn" : ""}">${age == null ? "–" : esc((age / 1000).toFixed(1) + " s ago")}` +
          (m.stalled_ms > 1000 ? `<div class="warn">loop stalled ${esc((m.stalled_ms / 1000).toFixed(1))} s</div>` : "") + `</td>` +
          `<td class="num">${esc(m.restarts ?? 0)}</td></tr>`;
      }), 'id="members"'));
    setHTML(s["members-notes"], (doc.notes || []).map(n => `<p class="warn">${esc(n)}</p>`).join(""));
  }

  /** The cluster's name, state and size in the header. */
  function showCluster(doc) {
    setHTML(document.getElementById("cluster-line"),
      `${esc(doc.cluster_name)} · ${esc(doc.state)} · ${esc(doc.size)} member${doc.size === 1 ? "" : "s"}`);
  }

  return {jobs, job, members, showCluster};
})();
