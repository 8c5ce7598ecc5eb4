import type { TargetHealth } from '../aws/elbv2.js';
import { UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import type { KubeObject } from '../manifests/types.js';
import { checkDeployment, conditionStatus, GATE_PREFIX, podIp, type WorkloadSnapshot, type WorkloadWatchView } from '../plan/checks/workload.js';
import type { Recorder, RunContext } from './context.js';
import { GuardTripped } from './guarding.js';
import { ForeignChange, foreignChange } from './foreign.js';
import type { BindingInfo, WorkloadWatch } from './types.js';
import { waitUntil, type CheckResult } from './wait.js';

/**
 * The wait for one Deployment (also used after a rollback): keeps a snapshot current — Kubernetes watched, target
 * health described when a state can change — and re-evaluates the pure checks (plan/checks/workload.ts) on it.
 */

/**
 * While an informer has not listed yet: which, and the last error (retried with backoff; the wait's deadline still
 * applies). Errors that retrying cannot fix (a kind the cluster does not serve, RBAC) end the wait at once.
 */
export function unsyncedMessage(informers: Informer[]): string | undefined {
  const unsynced = informers.filter((i) => !i.isSynced);
  if (unsynced.length === 0) return undefined;
  for (const i of unsynced) {
    const e = i.lastError;
    if (e instanceof KubeApiError && (e.code === 401 || e.code === 403 || e.code === 404)) {
      throw new KubeApiError(e.code, e.status, `expected to list ${i.describe()}, but the API server answers ${e.code}: ${e.message}`);
    }
  }
  const errs = unsynced.filter((i) => i.lastError).map((i) => `${i.describe()}: ${i.lastError?.message ?? ''}`);
  return `first list of ${unsynced.map((i) => i.describe()).join(', ')}${errs.length > 0 ? ` (retrying after: ${errs[0]})` : ''}`;
}

/** The health check of the target groups routing to a workload (the model's), for hints. */
function healthCheckOf(ctx: RunContext, w: WorkloadWatch): { path: string; successCodes: string } | undefined {
  const tg = ctx.pre.model.targetGroups.find((t) => w.bindings.some((b) => b.route.service.namespace === t.service.namespace && b.route.service.name === t.service.name));
  return tg ? { path: tg.healthCheck.path, successCodes: tg.healthCheck.successCodes } : undefined;
}

/** Pod lifecycle events for the timeline (created, Ready, terminating), each once per change. */
export function observePods(pods: KubeObject[], w: Pick<WorkloadWatch, 'oldPodIps'>, rec: Recorder, seen: Map<string, string>): void {
  for (const p of pods) {
    const ready = conditionStatus(p, 'Ready') ?? 'Unknown';
    const sig = `${p.metadata.deletionTimestamp ? 'terminating' : 'live'}|${ready}`;
    if (seen.get(p.metadata.name) === sig) continue;
    const first = !seen.has(p.metadata.name);
    seen.set(p.metadata.name, sig);
    if (p.metadata.deletionTimestamp) rec.observe('pod-deleted', `pod ${p.metadata.name} terminating`, { pod: p.metadata.name });
    else if (first && !w.oldPodIps.has(podIp(p) ?? '')) rec.observe('pod-created', `pod ${p.metadata.name} created`, { pod: p.metadata.name });
    if (ready === 'True' && !p.metadata.deletionTimestamp) rec.observe('pod-ready', `pod ${p.metadata.name} Ready`, { pod: p.metadata.name, ip: podIp(p) ?? null });
  }
}

export async function waitForWorkload(w: WorkloadWatch, ctx: RunContext): Promise<void> {
  const { options, deps, state, rec } = ctx;
  const ns = w.namespace;
  const healthCheck = healthCheckOf(ctx, w);
  const kind = w.kind ?? 'Deployment';
  const deployments = new Informer(deps.kube, { apiVersion: 'apps/v1', kind, namespace: ns, fieldSelector: `metadata.name=${w.name}` });
  // A Deployment's revisions are ReplicaSets; a StatefulSet's or DaemonSet's are ControllerRevisions (labelled like its pods).
  const replicaSets = new Informer(deps.kube, { apiVersion: 'apps/v1', kind: kind === 'Deployment' ? 'ReplicaSet' : 'ControllerRevision', namespace: ns, labelSelector: w.selector });
  const pods = new Informer(deps.kube, { apiVersion: 'v1', kind: 'Pod', namespace: ns, labelSelector: w.selector });
  const slices = new Informer(deps.kube, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: ns });
  const informers = [deployments, replicaSets, pods, slices];
  informers.forEach((i) => i.start());
  const seenPods = new Map<string, string>();
  const gated = options.readinessGates !== 'off';
  const expectedGates = gated ? w.bindings.filter((b) => b.targetType === 'ip').map((b) => `${GATE_PREFIX}${b.name}`) : [];
  const targets = startTargetHealth(() => w.bindings, ctx);
  const offPods = pods.onChange(() => targets.soon());
  try {
    const view: WorkloadWatchView = {
      kind,
      namespace: ns,
      name: w.name,
      selector: w.selector,
      bindings: w.bindings,
      oldPodUids: w.oldPodUids,
      oldPodIps: w.oldPodIps,
      expectedGates,
      ...(healthCheck ? { healthCheck } : {}),
    };
    const check = (): CheckResult => {
      const awsError = targets.error();
      if (awsError instanceof UnreachableError) throw awsError;
      const unsynced = unsyncedMessage(informers);
      if (unsynced) return { done: false, message: unsynced };
      const live = deployments.list()[0];
      const foreign = live ? foreignChange(w, live, state) : undefined;
      if (foreign) throw new ForeignChange(foreign);
      const tripped = state.rollingBack ? undefined : state.guard?.tripped();
      if (tripped) throw new GuardTripped(tripped);
      observePods(pods.list(), w, rec, seenPods);
      const snapshot: WorkloadSnapshot = {
        workload: deployments.list()[0],
        replicaSets: kind === 'Deployment' ? replicaSets.list() : [],
        controllerRevisions: kind === 'Deployment' ? [] : replicaSets.list(),
        pods: pods.list(),
        slices: slices.list(),
        health: targets.health,
        ...(awsError ? { awsError: awsError.message } : {}),
      };
      const seen = checkDeployment(view, snapshot);
      if (seen.revision !== undefined) state.revisions.set(`${ns}/${w.name}`, seen.revision);
      if (!state.rollingBack) for (const p of seen.newPods) if (podIp(p)) state.newPodIps.add(podIp(p) as string);
      return seen.result;
    };
    await waitUntil(check, {
      what: `rolling out ${kind} ${ns}/${w.name}`,
      deadlineMs: options.timeouts.rolloutSeconds * 1000,
      recheckMs: 1000,
      log: deps.log,
      now: deps.now,
      subscribe: changesOf(informers, targets, state),
    });
    deps.log.info(`${kind} ${ns}/${w.name} rolled out: revision ${state.revisions.get(`${ns}/${w.name}`) ?? '?'}, all new targets healthy, no target draining`);
  } finally {
    offPods();
    await targets.stop();
    await Promise.all(informers.map((i) => i.stop()));
  }
}

/** A wait's "something changed" signals: its informers, the target-health loop and a guard trip. */
export function changesOf(informers: Informer[], targets: Pick<TargetHealthLoop, 'onChange'>, state: Pick<RunContext['state'], 'guard'>): (fn: () => void) => () => void {
  return (fn) => {
    const offs = informers.map((i) => i.onChange(fn));
    state.guard?.onTrip(fn);
    const offAws = targets.onChange(fn);
    return () => {
      offs.forEach((o) => o());
      offAws();
    };
  };
}

export interface TargetHealthLoop {
  /** Target group ARN → the last DescribeTargetHealth answer. */
  health: Map<string, TargetHealth[]>;
  /** The last failure (retried; an UnreachableError ends the loop). */
  error(): Error | undefined;
  /** Describe again shortly (a pod changed: registration follows endpoints). */
  soon(): void;
  onChange(fn: () => void): () => void;
  stop(): Promise<void>;
}

/**
 * Describe target health when a state can change: right after a pod change (registration follows endpoints), at the
 * health-check interval while targets are initial/unhealthy, and when a drain can end. Every state change goes to the
 * timeline. `bindings` is read on every round (a Rollout's bindings appear while it is waited on).
 */
export function startTargetHealth(bindings: () => BindingInfo[], ctx: RunContext): TargetHealthLoop {
  const { options, deps, rec } = ctx;
  const health = new Map<string, TargetHealth[]>();
  const seenStates = new Map<string, string>();
  let awsListeners: Array<() => void> = [];
  const awsChanged = (): void => awsListeners.forEach((l) => l());
  const stopAws = new AbortController();
  const scale = options.timeScale;
  let nextDescribeAt = 0;
  let awsError: Error | undefined;
  let wakeDescribe: (() => void) | undefined;
  const describeLoop = (async () => {
    const intervalMs = Math.max(50, (15_000 / scale) / 3);
    while (!stopAws.signal.aborted) {
      const wait = Math.max(0, nextDescribeAt - deps.now());
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(wait || intervalMs, intervalMs));
        wakeDescribe = () => {
          clearTimeout(timer);
          r();
        };
      });
      wakeDescribe = undefined;
      if (stopAws.signal.aborted) break;
      try {
        for (const b of bindings()) {
          const targets = await deps.elbv2.targetHealth(b.arn, stopAws.signal);
          health.set(b.arn, targets);
          for (const t of targets) {
            const k = `${b.arn}|${t.id}:${t.port}`;
            if (seenStates.get(k) !== t.state) {
              seenStates.set(k, t.state);
              rec.observe('target-state', `target ${t.id}:${t.port} ${t.state}${t.reason ? ` (${t.reason})` : ''}`, { targetGroup: b.name, target: `${t.id}:${t.port}`, state: t.state, reason: t.reason ?? null });
            }
          }
          // A target that left the group (deregistration finished) is recorded as gone, for the report's picture.
          const present = new Set(targets.map((t) => `${b.arn}|${t.id}:${t.port}`));
          for (const [k, st] of seenStates) {
            if (!k.startsWith(`${b.arn}|`) || present.has(k) || st === 'gone') continue;
            seenStates.set(k, 'gone');
            const target = k.slice(b.arn.length + 1);
            rec.observe('target-state', `target ${target} gone (deregistered)`, { targetGroup: b.name, target, state: 'gone', reason: null });
          }
        }
        awsError = undefined;
        nextDescribeAt = deps.now() + intervalMs;
        awsChanged();
      } catch (err) {
        if (stopAws.signal.aborted) break;
        awsError = err as Error;
        deps.log.warn(`DescribeTargetHealth failed, retrying: ${(err as Error).message}`);
        awsChanged();
        if (err instanceof UnreachableError) break;
      }
    }
  })();
  return {
    health,
    error: () => awsError,
    soon: () => {
      nextDescribeAt = Math.min(nextDescribeAt, deps.now() + 50);
    },
    onChange: (fn) => {
      awsListeners.push(fn);
      return () => {
        awsListeners = awsListeners.filter((l) => l !== fn);
      };
    },
    stop: async () => {
      stopAws.abort();
      wakeDescribe?.();
      await describeLoop;
    },
  };
}
