import { stringify } from 'yaml';
import {
  AWS_DEFAULT_DEREGISTRATION_DELAY,
  buildModel,
  effectiveDeregistrationDelay,
  routedDeployments,
  type AppModel,
} from '../manifests/model.js';
import type { JsonObject, LoadedObject, ManifestSet } from '../manifests/types.js';
import { planEdits, type PlannedEdit, type TuningChange } from './plan.js';
import { DEFAULT_MIN_PRESTOP_SECONDS, delayHolds, graceHolds } from './timers.js';

export type { TuningChange } from './plan.js';
export { DEFAULT_MIN_PRESTOP_SECONDS } from './timers.js';

export type TuneMode = 'auto' | 'check' | 'off';

export interface TuneOptions {
  mode: TuneMode;
  /** The app's own shutdown time after SIGTERM (default 5). */
  shutdownSeconds: number;
  /** Whether `auto` may add a preStop sleep to serving containers that have none. */
  addPreStop: boolean;
  /** The preStop sleep added when one is missing: ALB data-plane propagation. Default 15. */
  minPreStopSeconds?: number;
}

/** The timers of one Deployment against the target groups in front of it, as they will be applied. */
export interface TimerPlan {
  deployment: { namespace: string; name: string };
  /** "ns/ingress → svc:port" or "TargetGroupBinding ns/name". */
  targetGroups: string[];
  /** Shortest preStop sleep of the serving containers; null when one has none or it cannot be read. */
  preStopSeconds: number | null;
  gracePeriodSeconds: number;
  /** Longest effective deregistration delay of the target groups (AWS's 300 s when unset). */
  deregistrationDelaySeconds: number;
  holds: boolean;
  problems: string[];
}

export interface TuneResult {
  /** With `auto`: rewritten copies of the objects that changed (the rest as they were). Otherwise the input set. */
  set: ManifestSet;
  /** With `check`: what `auto` would change. */
  changes: TuningChange[];
  timers: TimerPlan[];
}

/**
 * Makes `deregistration delay < preStop` and `preStop + shutdown ≤ terminationGracePeriodSeconds` hold for every
 * Deployment behind a target group, by rewriting copies of the manifests (`auto`) or reporting what it would
 * change (`check`). Pure: the input set is never modified.
 */
export function tuneManifests(set: ManifestSet, options: TuneOptions): TuneResult {
  if (options.mode === 'off') return { set, changes: [], timers: [] };
  const edits = planEdits(buildModel(set), {
    shutdownSeconds: options.shutdownSeconds,
    addPreStop: options.addPreStop,
    minPreStopSeconds: options.minPreStopSeconds ?? DEFAULT_MIN_PRESTOP_SECONDS,
  });
  const result = options.mode === 'auto' ? applyEdits(set, edits) : set;
  return {
    set: result,
    changes: edits.map((e) => e.change),
    timers: timerPlans(buildModel(result), options.shutdownSeconds),
  };
}

function applyEdits(set: ManifestSet, edits: PlannedEdit[]): ManifestSet {
  if (edits.length === 0) return set;
  // Copy-on-write: a copy shares every map and list with the original except those on the path of an edit.
  const copies = new Map<LoadedObject, { loaded: LoadedObject; fresh: Set<unknown> }>();
  for (const edit of edits) {
    let copy = copies.get(edit.target);
    if (!copy) {
      const object = { ...edit.target.object };
      copy = { loaded: { ...edit.target, object }, fresh: new Set([object]) };
      copies.set(edit.target, copy);
    }
    setAt(copy.loaded.object, edit.path, edit.value, copy.fresh);
  }
  return { ...set, objects: set.objects.map((o) => copies.get(o)?.loaded ?? o) };
}

/** Writes `value` at `path`, copying the shared maps and lists on the way (those not in `fresh`) and creating missing maps. */
function setAt(root: JsonObject, path: ReadonlyArray<string | number>, value: unknown, fresh: Set<unknown>): void {
  let node: Record<string | number, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string | number;
    const next = node[key];
    if (!fresh.has(next)) {
      const copy = typeof next !== 'object' || next === null ? {} : Array.isArray(next) ? [...(next as unknown[])] : { ...(next as object) };
      fresh.add(copy);
      node[key] = copy;
    }
    node = node[key] as Record<string | number, unknown>;
  }
  node[path[path.length - 1] as string | number] = value;
}

export function timerPlans(model: AppModel, shutdownSeconds: number): TimerPlan[] {
  return routedDeployments(model).map(({ deployment: d, routes, serving }) => {
    const problems: string[] = [];
    const sleeps = serving.map((c) => ({ c, s: c.preStop.kind === 'sleep' ? c.preStop.seconds : null }));
    for (const { c } of sleeps.filter((x) => x.s === null)) {
      problems.push(
        c.preStop.kind === 'none'
          ? `container ${c.name} has no preStop sleep: it stops while the ALB still routes to it`
          : `container ${c.name} has a preStop hook whose duration cannot be read (${c.preStop.kind === 'unknown' ? c.preStop.description : ''}); the invariant is not checked for it`,
      );
    }
    const preStop = sleeps.some((x) => x.s === null) ? null : Math.min(...sleeps.map((x) => x.s as number));
    const longest = Math.max(0, ...sleeps.map((x) => x.s ?? 0));
    const grace = d.terminationGracePeriodSeconds;
    if (!graceHolds(grace, longest, shutdownSeconds)) {
      problems.push(`terminationGracePeriodSeconds ${grace} < preStop ${longest} + shutdown ${shutdownSeconds}`);
    }
    const delays: number[] = [];
    for (const r of routes) {
      if (r.targetGroup) {
        const delay = effectiveDeregistrationDelay(r.targetGroup);
        delays.push(delay);
        if (preStop !== null && !delayHolds(delay, preStop)) problems.push(`${r.label}: deregistration delay ${delay} s ≥ preStop ${preStop} s`);
      } else {
        problems.push(`${r.label}: the deregistration delay is set on the target group in AWS, not in these manifests; check it is below ${preStop ?? 'the preStop sleep'} s`);
      }
    }
    return {
      deployment: { namespace: d.namespace, name: d.name },
      targetGroups: [...new Set(routes.map((r) => r.label))],
      preStopSeconds: preStop,
      gracePeriodSeconds: grace,
      deregistrationDelaySeconds: delays.length > 0 ? Math.max(...delays) : AWS_DEFAULT_DEREGISTRATION_DELAY,
      holds: problems.length === 0,
      problems: [...new Set(problems)],
    };
  });
}

/**
 * The (rewritten) objects back as YAML, one multi-document text per source file, in load order.
 * Comments and formatting of the originals are not kept: these are the manifests as they will be applied.
 */
export function renderManifestsYaml(set: ManifestSet): Map<string, string> {
  const byFile = new Map<string, string[]>();
  for (const o of set.objects) {
    const docs = byFile.get(o.source.file) ?? [];
    docs.push(stringify(o.object, { lineWidth: 0 }));
    byFile.set(o.source.file, docs);
  }
  return new Map([...byFile].map(([file, docs]) => [file, docs.join('---\n')]));
}
