import type { Plan } from '../plan/index.js';
import type { WaitKind } from '../plan/phases.js';
import { describeStep } from '../plan/steps.js';

/** How a step line reads: most steps wait; some record, watch, or only say what is not checked. */
const VERB: Partial<Record<WaitKind, string>> = {
  'record-revisions': 'record',
  guard: 'guard ',
  'not-waited': 'note  ',
  'no-load-balancer': 'note  ',
  'argo-not-done': 'note  ',
  'deferred-dry-run': 'check ',
};

const PHASE_TITLES: Record<string, string> = {
  namespaces: 'Namespaces and CRDs',
  config: 'Configuration',
  routing: 'Routing (Service, Ingress, TargetGroupBinding)',
  workloads: 'Workloads',
  bake: 'Bake',
};

/** The plan as the JSON shape scripts depend on (extend, never rename). */
export function renderPlanJson(plan: Plan): string {
  const out: string[] = [];
  writePlanJson(plan, (chunk) => out.push(chunk));
  return out.join('');
}

/**
 * renderPlanJson's text handed to `write` in pieces of about 64 KiB as it is made: for a large set the whole text
 * (and its copy as bytes) would be the biggest thing in memory.
 */
export function writePlanJson(plan: Plan, write: (chunk: string) => void): void {
  const shape = {
    phases: plan.phases,
    steps: plan.steps,
    changes: plan.changes,
    estimates: plan.estimates,
    mustExist: plan.mustExist,
    timers: plan.timers,
  };
  const sink = new ChunkSink(write);
  writeJson(shape, 3, sink);
  sink.add('\n');
  sink.flush();
}

class ChunkSink {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly write: (chunk: string) => void) {}
  add(s: string): void {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  }
  flush(): void {
    if (this.parts.length > 0) this.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

const omitted = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/**
 * JSON.stringify(value) in pieces (the same text): arrays are split into their items down to `depth` levels of
 * arrays; an object is split into its entries only when it holds an array, so small objects stay one piece.
 */
function writeJson(value: unknown, depth: number, sink: ChunkSink): void {
  if (depth > 0 && Array.isArray(value)) {
    sink.add('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) sink.add(',');
      if (omitted(value[i])) sink.add('null');
      else writeJson(value[i], depth - 1, sink);
    }
    sink.add(']');
    return;
  }
  if (depth > 0 && holdsArray(value)) {
    let first = true;
    for (const k in value) {
      if (!Object.prototype.hasOwnProperty.call(value, k) || omitted(value[k])) continue;
      sink.add(`${first ? '{' : ','}${JSON.stringify(k)}:`);
      first = false;
      writeJson(value[k], depth, sink);
    }
    sink.add(first ? '{}' : '}');
    return;
  }
  sink.add(JSON.stringify(value) ?? 'null');
}

function holdsArray(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const k in value) if (Object.prototype.hasOwnProperty.call(value, k) && Array.isArray((value as Record<string, unknown>)[k])) return true;
  return false;
}

export function renderPlanText(plan: Plan): string {
  const out: string[] = [];
  const preflight = plan.steps.filter((s) => s.phase === 'preflight');
  if (preflight.length > 0) out.push(`0. Preflight`, ...preflight.flatMap(describeStep).map((w) => `   ${w.kind === 'cluster-routes' ? 'read  ' : 'check '} ${w.description}`));
  plan.phases.forEach((phase, i) => {
    out.push(`${i + 1}. ${PHASE_TITLES[phase.name] ?? phase.name}`);
    for (const o of phase.objects) {
      const id = o.namespace ? `${o.namespace}/${o.name}` : o.name;
      out.push(`   apply  ${o.kind.padEnd(22)} ${id.padEnd(40)} ${o.file}:${o.line}`);
    }
    for (const w of phase.waitFor) out.push(`   ${VERB[w.kind] ?? 'wait  '} ${w.description}`);
  });
  if (plan.mustExist.length > 0) {
    out.push('', 'Namespaces the manifests use but do not create (must exist in the cluster):');
    for (const m of plan.mustExist) out.push(`   ${m.name} (used by ${m.referencedBy.slice(0, 5).join(', ')}${m.referencedBy.length > 5 ? ', …' : ''})`);
  }
  if (plan.changes.length > 0) {
    out.push('', 'Timer tuning:');
    for (const c of plan.changes) {
      const id = c.object.namespace ? `${c.object.namespace}/${c.object.name}` : c.object.name;
      out.push(`   ${c.object.kind} ${id} ${c.field}: ${c.from ?? '(unset)'} → ${c.to}   (${c.file}:${c.line})`);
      out.push(`      ${c.reason}`);
    }
  } else {
    out.push('', 'Timer tuning: nothing to change.');
  }
  if (plan.estimates.length > 0) {
    out.push('', 'Rollout time estimates:');
    for (const e of plan.estimates) {
      const b = e.breakdown;
      out.push(
        `   ${e.deployment.namespace}/${e.deployment.name}: ~${Math.round(e.seconds)}s for ${e.replicas} replicas in ${e.batches} batch(es)` +
          ` (per batch: start ${b.containerStartSeconds}s + target healthy ${b.registrationSeconds}s; then ${b.lastBatchSeconds}s for the last batch's slowest pod and the last targets' drain)` +
          (e.argo
            ? `; Argo canary steps: ${e.argo.timedPauseSeconds}s of timed pauses included, plus ${e.argo.analysisSteps} analysis run(s) as long as their templates say${e.argo.indefinitePauses > 0 ? `; deploy ends at the first of ${e.argo.indefinitePauses} pause(s) only a person ends (--argo-pauses wait: until promoted)` : ''}`
            : ''),
      );
    }
  }
  return `${out.join('\n')}\n`;
}
