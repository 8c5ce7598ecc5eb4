import {
  DEREGISTRATION_DELAY_KEY,
  DEREGISTRATION_DELAY_RANGE,
  TG_ATTRIBUTES_ANNOTATION,
  formatStringMap,
  idOf,
  parseStringMap,
  routedDeployments,
  servingContainers,
  type AppModel,
  type ContainerModel,
  type DeploymentModel,
  type ObjectId,
  type TargetGroupModel,
} from '../manifests/model.js';
import type { FieldPath, LoadedObject } from '../manifests/types.js';
import { delayBelow, delayHolds, graceFor, graceHolds } from './timers.js';

/**
 * Works out the edits that make the timer invariant hold (see timers.ts), as data. Three kinds of edit, in order:
 *   1. a preStop sleep for serving containers that have none, and a longer one where a readable sleep is shorter than
 *      the minimum (only when allowed; see DEFAULT_MIN_PRESTOP_SECONDS);
 *   2. the deregistration delay on whichever object supplies the effective target-group-attributes (the Service if it
 *      has the annotation, else the Ingress): lowered below the shortest preStop of every Deployment behind every
 *      target group that object feeds — a shared target group gets one delay that fits all;
 *   3. terminationGracePeriodSeconds raised to preStop + shutdown (+ margin). Never lowered; a preStop never shortened.
 */

export interface TuningChange {
  object: ObjectId;
  file: string;
  line: number;
  field: string;
  from: string | number | null;
  to: string | number;
  reason: string;
}

export interface PlannedEdit {
  change: TuningChange;
  target: LoadedObject;
  /** Where to write `change.to` inside the object. */
  path: FieldPath;
  /** For a preStop: the value is an object ({sleep: {seconds}}) rather than `change.to`. */
  value: unknown;
}

export interface PlanInputs {
  shutdownSeconds: number;
  addPreStop: boolean;
  minPreStopSeconds: number;
}

export function planEdits(model: AppModel, inputs: PlanInputs): PlannedEdit[] {
  const sleeps = plannedSleeps(model, inputs);
  const edits: PlannedEdit[] = [...sleeps.edits];
  edits.push(...delayEdits(model, sleeps.seconds));
  edits.push(...graceEdits(model, sleeps.seconds, inputs.shutdownSeconds));
  return edits;
}

/** The preStop sleep each container will have after tuning: its own, an added one, or null (none, or unreadable). */
type SleepPlan = Map<ContainerModel, number | null>;

function plannedSleeps(model: AppModel, inputs: PlanInputs): { seconds: SleepPlan; edits: PlannedEdit[] } {
  const seconds: SleepPlan = new Map();
  const edits: PlannedEdit[] = [];
  for (const d of model.deployments) {
    for (const c of d.containers) seconds.set(c, c.preStop.kind === 'sleep' ? c.preStop.seconds : null);
  }
  if (!inputs.addPreStop) return { seconds, edits };
  for (const rd of routedDeployments(model)) {
    for (const c of rd.serving) {
      if (c.preStop.kind === 'sleep' && c.preStop.seconds < inputs.minPreStopSeconds) {
        const edit = lengthenSleep(rd.deployment, c, c.preStop.form, c.preStop.seconds, inputs.minPreStopSeconds);
        if (edit) {
          seconds.set(c, inputs.minPreStopSeconds);
          edits.push(edit);
        }
        continue;
      }
      if (c.preStop.kind !== 'none') continue;
      const s = inputs.minPreStopSeconds;
      seconds.set(c, s);
      const path = [...c.path, 'lifecycle', 'preStop'];
      edits.push({
        target: rd.deployment.loaded,
        path,
        value: { sleep: { seconds: s } },
        change: {
          ...where(rd.deployment.loaded, c.path),
          field: `${fieldName(c.path)}.lifecycle.preStop.sleep.seconds`,
          from: null,
          to: s,
          reason:
            `container ${c.name} had no preStop hook: Kubernetes sends SIGTERM while the ALB still routes to the target, so requests would hit a stopping process (502/504). ` +
            `A ${s} s sleep covers the ALB's deregistration propagation (the sleep action needs Kubernetes ≥ 1.30)`,
        },
      });
    }
  }
  return { seconds, edits };
}

/**
 * A preStop sleep shorter than the minimum, lengthened: the `sleep` action's seconds, or the `sleep N` inside an exec
 * command (the rest of the command kept). Never shortens; undefined when the command cannot be rewritten.
 */
function lengthenSleep(d: DeploymentModel, c: ContainerModel, form: 'sleep-action' | 'exec', from: number, to: number): PlannedEdit | undefined {
  const reason =
    `container ${c.name} sleeps only ${from} s in preStop: the ALB keeps routing to a terminating target until the deregistration has reached ` +
    `every load-balancer node (p99 about 25 s, docs/lab-timings.md), so the app would stop while requests still arrive (502/504). ${to} s covers it`;
  const base = [...c.path, 'lifecycle', 'preStop'];
  if (form === 'sleep-action') {
    const path = [...base, 'sleep', 'seconds'];
    return { target: d.loaded, path, value: to, change: { ...where(d.loaded, path), field: fieldName(path), from, to, reason } };
  }
  const path = [...base, 'exec', 'command'];
  let node: unknown = d.loaded.object;
  for (const k of path) node = node && typeof node === 'object' ? (node as Record<string | number, unknown>)[k] : undefined;
  if (!Array.isArray(node)) return undefined;
  let done = false;
  const command = node.map((part) => {
    if (done || typeof part !== 'string') return part;
    const next = part.replace(/(^|[\s;&|(])sleep\s+\d+(?:\.\d+)?[smh]?(?=$|[\s;&|)])/, (_m, pre: string) => `${pre}sleep ${to}`);
    done = next !== part;
    return next;
  });
  if (!done) return undefined;
  return { target: d.loaded, path, value: command, change: { ...where(d.loaded, path), field: fieldName(path), from, to, reason } };
}

/** The shortest planned preStop among the serving containers of a target group's Deployments; null when one has none. */
function shortestSleep(tg: TargetGroupModel, sleeps: SleepPlan): { seconds: number | null; who: string } | undefined {
  let best: { seconds: number | null; who: string } | undefined;
  for (const d of tg.deployments) {
    for (const c of servingContainers(d, tg.servicePort)) {
      if (c.preStop.kind === 'unknown') continue;
      const s = sleeps.get(c) ?? null;
      const who = `${d.kind} ${d.namespace}/${d.name} container ${c.name}`;
      if (!best || s === null || (best.seconds !== null && s < best.seconds)) best = { seconds: s, who };
      if (s === null) return best;
    }
  }
  return best;
}

function delayEdits(model: AppModel, sleeps: SleepPlan): PlannedEdit[] {
  // Group target groups by the object that supplies their attributes: one value is written per object.
  const writers = new Map<LoadedObject, TargetGroupModel[]>();
  for (const tg of model.targetGroups) {
    if (tg.deployments.length === 0) continue;
    const writer = tg.attributesSource?.from ?? tg.ingress.loaded;
    writers.set(writer, [...(writers.get(writer) ?? []), tg]);
  }
  const edits: PlannedEdit[] = [];
  for (const [writer, tgs] of writers) {
    if (tgs.some((t) => t.attributesError)) continue; // cannot merge into an annotation that does not parse; lint says so
    const limits = tgs.map((tg) => ({ tg, sleep: shortestSleep(tg, sleeps) })).filter((x) => x.sleep !== undefined);
    if (limits.length === 0 || limits.some((x) => x.sleep?.seconds === null)) continue; // no preStop: no delay can fit below it
    const tightest = limits.reduce((a, b) => ((b.sleep?.seconds ?? 0) < (a.sleep?.seconds ?? 0) ? b : a));
    const preStop = tightest.sleep?.seconds ?? 0;
    const current = tgs[0]?.deregistrationDelaySeconds;
    const invalid = tgs.some((t) => t.deregistrationDelayError);
    if (!invalid && current !== undefined && delayHolds(current, preStop)) continue;
    const target = Math.min(DEREGISTRATION_DELAY_RANGE.max, Math.max(DEREGISTRATION_DELAY_RANGE.min, delayBelow(preStop)));
    const raw = writer.object.metadata.annotations?.[TG_ATTRIBUTES_ANNOTATION];
    const merged = formatStringMap({ ...(raw ? parseStringMap(raw) : {}), [DEREGISTRATION_DELAY_KEY]: String(target) });
    const path = ['metadata', 'annotations', TG_ATTRIBUTES_ANNOTATION];
    const was = invalid
      ? `deregistration delay "${tgs[0]?.attributes[DEREGISTRATION_DELAY_KEY] ?? ''}" is not a valid number of seconds (0–3600)`
      : current === undefined
        ? `deregistration delay 300 s (AWS default) ≥ preStop ${preStop} s of ${tightest.sleep?.who}`
        : `deregistration delay ${current} s ≥ preStop ${preStop} s of ${tightest.sleep?.who}`;
    const shared = tgs.length > 1 || tgs.some((t) => t.deployments.length > 1) ? `; it fits every Deployment behind ${tgs.map((t) => t.key).join(', ')}` : '';
    edits.push({
      target: writer,
      path,
      value: merged,
      change: {
        ...where(writer, path),
        field: `metadata.annotations["${TG_ATTRIBUTES_ANNOTATION}"]`,
        from: raw ?? null,
        to: merged,
        reason: `${was}: old targets would still be draining after their pod exits (in-flight requests cut, and the rollout waits for the drain). ${target} s keeps it below the preStop${shared}`,
      },
    });
  }
  return edits;
}

function graceEdits(model: AppModel, sleeps: SleepPlan, shutdownSeconds: number): PlannedEdit[] {
  const edits: PlannedEdit[] = [];
  for (const d of model.deployments) {
    const longest = longestSleep(d, sleeps);
    if (!longest || graceHolds(d.terminationGracePeriodSeconds, longest.seconds, shutdownSeconds)) continue;
    const to = graceFor(longest.seconds, shutdownSeconds);
    const path = [...d.podSpecPath, 'terminationGracePeriodSeconds'];
    edits.push({
      target: d.loaded,
      path,
      value: to,
      change: {
        ...where(d.loaded, path),
        field: 'spec.template.spec.terminationGracePeriodSeconds',
        from: d.gracePeriodExplicit ? d.terminationGracePeriodSeconds : null,
        to,
        reason:
          `grace period ${d.terminationGracePeriodSeconds} s${d.gracePeriodExplicit ? '' : ' (default)'} < preStop ${longest.seconds} s of container ${longest.container.name} + shutdown ${shutdownSeconds} s: ` +
          `the kubelet would SIGKILL the app before it finishes its requests. ${to} s = preStop + shutdown + 5 s margin`,
      },
    });
  }
  return edits;
}

function longestSleep(d: DeploymentModel, sleeps: SleepPlan): { seconds: number; container: ContainerModel } | undefined {
  let best: { seconds: number; container: ContainerModel } | undefined;
  for (const c of d.containers) {
    const s = sleeps.get(c);
    if (s !== null && s !== undefined && (!best || s > best.seconds)) best = { seconds: s, container: c };
  }
  return best;
}

function where(o: LoadedObject, path: FieldPath): { object: ObjectId; file: string; line: number } {
  const at = o.locate(path);
  return { object: idOf(o), file: at.file, line: at.line };
}

/** ['spec','template','spec','containers',0] → 'spec.template.spec.containers[0]'. */
function fieldName(path: FieldPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

