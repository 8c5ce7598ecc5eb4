import type { Bar, BarKind, RolloutChart } from './chart.js';

/** Mermaid gantt tags per bar kind (GitHub renders ```mermaid blocks in job summaries and comments). */
const TAGS: Record<BarKind, string> = {
  phase: 'done, ',
  batch: '',
  'target-up': 'done, ',
  'target-down': 'active, ',
  guard: 'active, ',
  'guard-failure': 'crit, ',
  rollback: 'crit, active, ',
  failed: 'crit, ',
};

/** The rollout chart as a Mermaid gantt, in a fenced block ready for Markdown. */
export function renderMermaidGantt(chart: RolloutChart, title = `alb-rollout: ${chart.result}`): string {
  const lines = ['```mermaid', 'gantt', `  title ${title.replace(/[#;\n]/g, ' ')}`, '  dateFormat x', '  axisFormat %H:%M:%S'];
  const minMs = minWidthMs(chart);
  for (const s of chart.sections) {
    lines.push(`  section ${s.name}`);
    for (const b of s.bars) lines.push(`  ${label(b.label)}${b.open ? ' …' : ''} :${TAGS[b.kind]}${b.startMs}, ${end(b, minMs)}`);
    if (s.omitted > 0) lines.push(`  ${s.omitted} more (see the JSON report) :${chart.endMs}, ${chart.endMs + minMs}`);
  }
  lines.push('```');
  return `${lines.join('\n')}\n`;
}

/** Zero-length bars are invisible: draw them at least this wide (the label carries the truth). */
export function minWidthMs(chart: RolloutChart): number {
  return Math.max(100, Math.round((chart.endMs - chart.startMs) / 200));
}

function end(b: Bar, minMs: number): number {
  return Math.max(b.endMs, b.startMs + minMs);
}

/** Task names end at ':' and a '#'/';' can start entity codes or statements: keep names to plain text. */
function label(s: string): string {
  return s.replace(/:/g, '∶').replace(/[#;`]/g, ' ').replace(/\s+/g, ' ').trim();
}
