import type { DeployReport } from './deploy.js';
import { buildRolloutChart, type BarKind, type RolloutChart } from './chart.js';
import { minWidthMs } from './mermaid.js';

/**
 * `--report-html FILE`: the run as one self-contained page (inline SVG, CSS and a little JS; nothing is fetched), the
 * same picture as the job summary's Mermaid chart, plus the phases, the guard and the timeline.
 */

const COLORS: Record<BarKind, string> = {
  phase: '#4c78a8',
  batch: '#72b7b2',
  'target-up': '#54a24b',
  'target-down': '#b279a2',
  guard: '#eeca3b',
  'guard-failure': '#e45756',
  rollback: '#f58518',
  failed: '#e45756',
};

/**
 * The guard's measurements as HTML (the HTML report and the job summary): each signal's windows, requests and errors,
 * what it judged against (the old version's baseline, or none), what was not measured and why.
 */
export function guardHtml(g: NonNullable<DeployReport['guard']>): string {
  const row = (cells: Array<string | number>): string => `<tr>${cells.map((c) => `<td>${escapeHtml(String(c))}</td>`).join('')}</tr>`;
  const notes = [
    ...(g.baselines ?? []).map((b) => `baseline ${b}`),
    ...(g.cloudwatchMetrics ? [`cloudwatch judges ${g.cloudwatchMetrics}`] : []),
    ...g.skipped.map((s) => `skipped: ${s}`),
  ];
  return (
    `<table id="signals"><tr><th>Signal</th><th>Windows</th><th>Requests</th><th>Errors</th><th>Failing windows</th><th>First error</th></tr>${g.signals
      .map((s) => row([s.signal, s.windows, s.requests, s.errors, s.failingWindows, s.firstErrorAt ?? '']))
      .join('')}</table>` + (notes.length > 0 ? `<ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : '')
  );
}

export function renderDeployHtml(r: DeployReport, title = 'alb-rollout deploy'): string {
  const chart = buildRolloutChart(r);
  const rows: Array<[string, string]> = [
    ['Result', r.result],
    ['Revision', `${r.previousRevision || '(new)'} → ${r.revision || '?'}`],
    ['Duration', `${r.durationSeconds} s`],
    ['Load balancer', r.loadBalancerHostnames.join(', ') || '—'],
    ['Target groups', r.targetGroupArns.join(', ') || '—'],
  ];
  if (r.error) rows.push(['Error', `${r.failedPhase ? `phase ${r.failedPhase}: ` : ''}${r.error}`]);
  if (r.guard) rows.push(['Guard', `${r.guard.decision.verdict}: ${r.guard.decision.reason}`]);
  for (const rb of r.rollbacks ?? []) rows.push(['Rollback', rb.message]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(`${title}: ${r.result}`)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } .result-succeeded { color: #1a7f37; } .result-failed, .result-rolled-back, .result-unverified { color: #cf222e; }
svg text { font: 12px system-ui, sans-serif; } .bar:hover { opacity: .75; }
#filter { margin: 6px 0; padding: 3px 6px; width: 280px; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}: <span class="result-${escapeHtml(r.result)}" id="result">${escapeHtml(r.result)}</span></h1>
<table id="overview">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<h2>Rollout</h2>
${renderSvg(chart)}
<h2>Phases</h2>
<table id="phases"><tr><th>Phase</th><th>Started</th><th>Seconds</th></tr>${r.phases
    .map((p) => `<tr><td>${escapeHtml(p.name)}</td><td>${escapeHtml(p.startedAt)}</td><td>${p.durationSeconds ?? ''}</td></tr>`)
    .join('')}</table>
${r.guard ? `<h2>Guard signals</h2>${guardHtml(r.guard)}` : ''}
<h2>Timeline</h2>
<input id="filter" type="search" placeholder="filter the timeline (e.g. target, pod, guard)" aria-label="filter the timeline">
<table id="timeline"><tr><th>t (s)</th><th>Kind</th><th>Event</th></tr>${r.timeline
    .map((e) => `<tr data-kind="${escapeHtml(e.kind)}"><td>${e.t}</td><td>${escapeHtml(e.kind)}</td><td>${escapeHtml(e.message)}</td></tr>`)
    .join('')}</table>
<script>
(function () {
  var input = document.getElementById('filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#timeline tr[data-kind]'));
  input.addEventListener('input', function () {
    var q = input.value.toLowerCase();
    rows.forEach(function (row) { row.style.display = row.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
  });
  document.body.setAttribute('data-ready', 'true');
})();
</script>
</body>
</html>
`;
}

/** The chart as inline SVG: one row per bar, sections labelled on the left, seconds since the start on the axis. */
export function renderSvg(chart: RolloutChart): string {
  const labelWidth = 300;
  const plotWidth = 720;
  const rowHeight = 20;
  const top = 24;
  const span = Math.max(1, chart.endMs - chart.startMs);
  const minMs = minWidthMs(chart);
  const x = (ms: number): number => labelWidth + ((ms - chart.startMs) / span) * plotWidth;
  const parts: string[] = [];
  let y = top;
  for (const s of chart.sections) {
    parts.push(`<text x="4" y="${y + 14}" font-weight="bold" class="section">${escapeHtml(s.name)}</text>`);
    y += rowHeight;
    for (const b of s.bars) {
      const x0 = x(b.startMs);
      const w = Math.max(2, x(Math.max(b.endMs, b.startMs + minMs)) - x0);
      const secs = `${((b.startMs - chart.startMs) / 1000).toFixed(1)}–${((b.endMs - chart.startMs) / 1000).toFixed(1)} s`;
      parts.push(
        `<g class="bar" data-kind="${b.kind}"><title>${escapeHtml(`${b.label}: ${secs}`)}</title><text x="16" y="${y + 14}">${escapeHtml(b.label)}${b.open ? ' …' : ''}</text>` +
          `<rect x="${x0.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" rx="2" fill="${COLORS[b.kind]}"/></g>`,
      );
      y += rowHeight;
    }
    if (s.omitted > 0) {
      parts.push(`<text x="16" y="${y + 14}" font-style="italic">${s.omitted} more (see the JSON report)</text>`);
      y += rowHeight;
    }
  }
  const ticks: string[] = [];
  const step = niceStep(span / 1000 / 8);
  for (let t = 0; t <= span / 1000 + 1e-9; t += step) {
    const tx = x(chart.startMs + t * 1000);
    ticks.push(`<line x1="${tx.toFixed(1)}" y1="${top - 4}" x2="${tx.toFixed(1)}" y2="${y}" stroke="#d0d7de"/><text x="${tx.toFixed(1)}" y="${top - 8}" text-anchor="middle">${Number(t.toFixed(3))}s</text>`);
  }
  return `<svg id="rollout-chart" xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 20}" height="${y + 8}" role="img" aria-label="rollout chart">${ticks.join('')}${parts.join('')}</svg>`;
}

function niceStep(raw: number): number {
  const base = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * base) return m * base;
  return 10 * base;
}

/** Text for HTML (element content and attribute values). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
