"use strict";
// jetmq dashboard: a job's DAG as an SVG. Vertices are placed in columns by the longest
// path from a source (sources left, sinks right), each column ordered by where its inputs are.

const Dag = (() => {
  const W = 176, H = 78, GAP_X = 84, GAP_Y = 26, PAD = 14, LANE = 6;

  const nameOf = v => (typeof v === "string" ? v : v.name);

  function layout(dag) {
    const names = (dag.vertices || []).map(nameOf);
    const known = new Set(names);
    const edges = (dag.edges || []).filter(e => known.has(e.from) && known.has(e.to) && e.from !== e.to);
    const column = new Map(names.map(n => [n, 0]));
    for (let round = 0; round < names.length; round++) {  // longest path; a DAG settles in |V|-1 rounds
      let moved = false;
      for (const e of edges) {
        if (column.get(e.to) < column.get(e.from) + 1) { column.set(e.to, column.get(e.from) + 1); moved = true; }
      }
      if (!moved) break;
    }
    const columns = [];
    for (const n of names) (columns[column.get(n)] ||= []).push(n);
    // an edge that skips columns gets a lane in each column it crosses, so it goes between
    // the boxes there, not behind them
    const size = new Map(names.map(n => [n, H]));
    const steps = [];  // [from, to] of adjacent columns, lanes included
    const routes = edges.map((e, i) => {
      const route = [e.from];
      for (let c = column.get(e.from) + 1; c < column.get(e.to); c++) {
        const lane = `\u0000${i}:${c}`;
        columns[c].push(lane);
        size.set(lane, LANE);
        route.push(lane);
      }
      route.push(e.to);
      for (let k = 1; k < route.length; k++) steps.push([route[k - 1], route[k]]);
      return route;
    });
    const row = new Map();
    columns.forEach((col, c) => {
      if (c > 0) {  // one barycentre pass: a vertex (or lane) goes near the mean row of its inputs
        const mean = n => {
          const rows = steps.filter(([, to]) => to === n).map(([from]) => row.get(from));
          return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
        };
        col.sort((a, b) => mean(a) - mean(b));
      }
      col.forEach((n, r) => row.set(n, r));
    });
    const heightOf = col => col.reduce((sum, n) => sum + size.get(n), 0) + (col.length - 1) * GAP_Y;
    const tallest = Math.max(H, ...columns.map(heightOf));
    const at = new Map();
    columns.forEach((col, c) => {
      let y = PAD + (tallest - heightOf(col)) / 2;
      for (const n of col) {
        at.set(n, {x: PAD + c * (W + GAP_X), y});
        y += size.get(n) + GAP_Y;
      }
    });
    const width = 2 * PAD + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
    return {names, edges, routes, at, width, height: 2 * PAD + tallest};
  }

  /** The SVG path of an edge along its route: curves between columns, straight through lanes. */
  function pathOf(route, at) {
    const a = at.get(route[0]), b = at.get(route[route.length - 1]);
    const points = [[a.x + W, a.y + H / 2]];
    for (const lane of route.slice(1, -1)) {
      const p = at.get(lane);
      points.push([p.x, p.y + LANE / 2], [p.x + W, p.y + LANE / 2]);
    }
    points.push([b.x, b.y + H / 2]);
    let d = `M${points[0][0]},${points[0][1]}`;
    for (let k = 1; k < points.length; k++) {
      const [x1, y1] = points[k - 1], [x2, y2] = points[k], bend = Math.max(30, (x2 - x1) / 2);
      d += k % 2 === 0 ? ` L${x2},${y2}` : ` C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
    }
    return {d, mx: (points[0][0] + points[1][0]) / 2, my: (points[0][1] + points[1][1]) / 2};
  }

  /** What an edge says above its line (how it routes) and below it (whether it crosses members). */
  function edgeLabels(e) {
    return [e.routing && e.routing !== "unicast" ? e.routing : "", e.distributed ? "distributed" : ""];
  }

  /** SVG markup of `dag` ({vertices, edges: [{from, to}]}), with `metrics` (name -> vertex row). */
  function render(dag, metrics) {
    const {names, edges, routes, at, width, height} = layout(dag);
    const vertices = new Map((dag.vertices || []).map(v => [nameOf(v), typeof v === "string" ? {} : v]));
    const out = [`<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" role="img" aria-label="the job's DAG">`,
      `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" ` +
      `orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`];
    edges.forEach((e, i) => {
      const {d, mx, my} = pathOf(routes[i], at), [above, below] = edgeLabels(e);
      out.push(`<g class="edge${e.distributed ? " distributed" : ""}" data-from="${esc(e.from)}" data-to="${esc(e.to)}">` +
        `<path d="${d}" marker-end="url(#arrow)"/>` +
        (above ? `<text x="${mx}" y="${my - 6}" text-anchor="middle">${esc(above)}</text>` : "") +
        (below ? `<text x="${mx}" y="${my + 14}" text-anchor="middle">${esc(below)}</text>` : "") +
        `</g>`);
    });
    for (const n of names) {
      const {x, y} = at.get(n), m = metrics.get(n), vertex = vertices.get(n);
      const capacity = m?.queue_capacity || 0, fill = capacity ? Math.min(1, m.queue_size / capacity) : 0;
      const short = n.length > 30 ? n.slice(0, 29) + "…" : n;  // long names are squeezed to fit, then cut
      out.push(`<g class="vertex${fill > 0.8 ? " backpressured" : ""}" data-vertex="${esc(n)}" transform="translate(${x},${y})">` +
        `<title>${esc(n)}${capacity ? ` — queues ${fmtCount(m.queue_size)}/${fmtCount(capacity)}` : ""}</title><rect class="box" width="${W}" height="${H}" rx="6"/>` +
        `<text class="name" x="10" y="19"${short.length > 19 ? ` textLength="${W - 20}" lengthAdjust="spacingAndGlyphs"` : ""}>` +
        `${esc(short)}</text>` +
        (vertex?.local_parallelism != null ? `<text class="parallelism" x="${W - 8}" y="38" text-anchor="end">` +
          `×${esc(vertex.local_parallelism)}<title>local parallelism</title></text>` : "") +
        `<text class="${m ? "rate" : "counts"}" x="10" y="38">${m ? esc(fmtRate(m.rate)) : "no metrics"}</text>` +
        `<text class="counts" x="10" y="54">${m ? `in ${esc(fmtCount(m.items_in))} · out ${esc(fmtCount(m.items_out))}` : ""}</text>` +
        (capacity ? `<rect class="queue" x="10" y="62" width="${W - 20}" height="7" rx="2"/>` +
          `<rect class="queue-fill" x="10" y="62" width="${((W - 20) * fill).toFixed(1)}" height="7" rx="2"/>` : "") +
        `</g>`);
    }
    out.push("</svg>");
    return out.join("");
  }

  return {render, layout};
})();
