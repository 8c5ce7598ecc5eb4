import type { PhaseRecord, TimelineEntry } from './timeline.js';

/**
 * The picture of a run, as data: rows of bars on one time axis, grouped in sections. Built from the run's phases and
 * timeline only; the Mermaid renderer (job summary) and the HTML renderer (`--report-html`) draw the same chart.
 */

export type BarKind = 'phase' | 'batch' | 'target-up' | 'target-down' | 'guard' | 'guard-failure' | 'rollback' | 'failed';

export interface Bar {
  label: string;
  /** Milliseconds since the epoch. */
  startMs: number;
  endMs: number;
  kind: BarKind;
  /** Did not finish inside the run (a target still draining at the end, a phase that failed). */
  open?: boolean;
}

export interface ChartSection {
  name: 'Phases' | 'Batches' | 'Targets' | 'Guard' | 'Rollback';
  bars: Bar[];
  /** Bars left out to keep the picture readable (they are all in the JSON report). */
  omitted: number;
}

export interface RolloutChart {
  startMs: number;
  endMs: number;
  result: string;
  sections: ChartSection[];
}

export interface ChartInput {
  result: string;
  phases: PhaseRecord[];
  timeline: TimelineEntry[];
}

/** Rows per section beyond which the rest is counted, not drawn. */
export const MAX_BARS_PER_SECTION = 40;

export function buildRolloutChart(run: ChartInput): RolloutChart {
  const times = [...run.phases.map((p) => Date.parse(p.startedAt)), ...run.timeline.map((e) => Date.parse(e.at))].filter((t) => Number.isFinite(t));
  const startMs = times.length > 0 ? Math.min(...times) : 0;
  const endMs = Math.max(startMs, ...times, ...run.phases.map((p) => (p.endedAt ? Date.parse(p.endedAt) : startMs)));
  const failedPhase = run.result !== 'succeeded' ? run.phases.at(-1)?.name : undefined;
  const phases: Bar[] = run.phases.map((p) => {
    const end = p.endedAt ? Date.parse(p.endedAt) : endMs;
    const failed = p.name === failedPhase && run.result === 'failed';
    return { label: p.name, startMs: Date.parse(p.startedAt), endMs: end, kind: p.name === 'rollback' ? 'rollback' : failed ? 'failed' : 'phase', ...(p.endedAt ? {} : { open: true }) };
  });
  return {
    startMs,
    endMs,
    result: run.result,
    sections: [
      section('Phases', phases),
      section('Batches', batches(run.timeline, endMs)),
      section('Targets', targets(run.timeline, endMs)),
      section('Guard', guard(run.timeline, run.phases, endMs)),
      section('Rollback', rollback(run.timeline, run.phases, endMs)),
    ].filter((s) => s.bars.length > 0),
  };
}

function section(name: ChartSection['name'], bars: Bar[]): ChartSection {
  return { name, bars: bars.slice(0, MAX_BARS_PER_SECTION), omitted: Math.max(0, bars.length - MAX_BARS_PER_SECTION) };
}

const str = (e: TimelineEntry, key: string): string | undefined => {
  const v = e.data?.[key];
  return typeof v === 'string' ? v : undefined;
};

/** A batch starts with the first new pod created while no other new pod waits to be Ready, and ends when all of its pods are. */
function batches(timeline: TimelineEntry[], endMs: number): Bar[] {
  const out: Bar[] = [];
  let open: { startMs: number; pending: Set<string>; pods: number } | undefined;
  for (const e of timeline) {
    const pod = str(e, 'pod');
    if (!pod) continue;
    if (e.kind === 'pod-created') {
      if (!open) open = { startMs: Date.parse(e.at), pending: new Set(), pods: 0 };
      open.pending.add(pod);
      open.pods += 1;
    } else if ((e.kind === 'pod-ready' || e.kind === 'pod-deleted') && open?.pending.delete(pod) && open.pending.size === 0) {
      out.push({ label: `batch ${out.length + 1} (${open.pods} pod${open.pods === 1 ? '' : 's'})`, startMs: open.startMs, endMs: Date.parse(e.at), kind: 'batch' });
      open = undefined;
    }
  }
  if (open) out.push({ label: `batch ${out.length + 1} (${open.pods} pod${open.pods === 1 ? '' : 's'}, not Ready)`, startMs: open.startMs, endMs, kind: 'failed', open: true });
  return out;
}

/** Per target: registration (initial → healthy, or → unhealthy) and deregistration (draining → gone). */
function targets(timeline: TimelineEntry[], endMs: number): Bar[] {
  const out: Bar[] = [];
  const up = new Map<string, number>();
  const down = new Map<string, number>();
  for (const e of timeline) {
    if (e.kind !== 'target-state') continue;
    const target = str(e, 'target');
    const state = str(e, 'state');
    if (!target || !state) continue;
    const t = Date.parse(e.at);
    if (state === 'initial') up.set(target, t);
    else if (state === 'healthy' || state === 'unhealthy') {
      const since = up.get(target);
      if (since !== undefined) {
        out.push({ label: `${target} initial → ${state}`, startMs: since, endMs: t, kind: state === 'healthy' ? 'target-up' : 'failed' });
        up.delete(target);
      }
    } else if (state === 'draining' || state === 'unhealthy.draining') down.set(target, t);
    else if (state === 'gone' || state === 'unused') {
      const since = down.get(target);
      if (since !== undefined) {
        out.push({ label: `${target} draining → gone`, startMs: since, endMs: t, kind: 'target-down' });
        down.delete(target);
      }
    }
  }
  for (const [target, since] of up) out.push({ label: `${target} initial (not healthy by the end)`, startMs: since, endMs, kind: 'failed', open: true });
  for (const [target, since] of down) out.push({ label: `${target} draining (still at the end)`, startMs: since, endMs, kind: 'target-down', open: true });
  return out.sort((a, b) => a.startMs - b.startMs);
}

/** The guard's watch (from its start to its decision) and each failing window it measured. */
function guard(timeline: TimelineEntry[], phases: PhaseRecord[], endMs: number): Bar[] {
  const entries = timeline.filter((e) => e.kind === 'guard');
  if (entries.length === 0) return [];
  const started = entries.find((e) => e.data?.event === 'started');
  const workloads = phases.find((p) => p.name === 'workloads');
  const startMs = started ? Date.parse(started.at) : workloads ? Date.parse(workloads.startedAt) : Date.parse((entries[0] as TimelineEntry).at);
  const decided = entries.find((e) => e.data?.verdict === 'pass' || e.data?.verdict === 'fail' || e.data?.verdict === 'inconclusive');
  const verdict = decided ? String(decided.data?.verdict) : 'no decision';
  const out: Bar[] = [{ label: `guard watch (${verdict})`, startMs, endMs: decided ? Date.parse(decided.at) : endMs, kind: verdict === 'fail' ? 'guard-failure' : 'guard', ...(decided ? {} : { open: true }) }];
  for (const e of entries) {
    if (e.data?.verdict !== 'failure') continue;
    const ws = str(e, 'windowStart');
    const we = str(e, 'windowEnd');
    const at = Date.parse(e.at);
    out.push({ label: `${str(e, 'signal') ?? 'signal'} failing window`, startMs: ws ? Date.parse(ws) : at, endMs: we ? Date.parse(we) : at, kind: 'guard-failure' });
  }
  return out;
}

function rollback(timeline: TimelineEntry[], phases: PhaseRecord[], endMs: number): Bar[] {
  const phase = phases.find((p) => p.name === 'rollback');
  const entries = timeline.filter((e) => e.kind === 'rollback');
  if (!phase && entries.length === 0) return [];
  const outcome = entries.map((e) => str(e, 'outcome')).find((o) => o !== undefined);
  const startMs = phase ? Date.parse(phase.startedAt) : Date.parse((entries[0] as TimelineEntry).at);
  const end = phase?.endedAt ? Date.parse(phase.endedAt) : entries.length > 0 ? Date.parse((entries.at(-1) as TimelineEntry).at) : endMs;
  return [{ label: `rollback${outcome ? ` (${outcome})` : ''}`, startMs, endMs: Math.max(end, startMs), kind: outcome === 'rolled-back' ? 'rollback' : 'failed' }];
}
