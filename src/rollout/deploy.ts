import type { Elbv2Reader, TargetHealth } from '../aws/elbv2.js';
import { KubeApiError, type KubeClient } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { deploymentRolloutStatus, REVISION_ANNOTATION, revisionOf } from '../kube/rollout-status.js';
import type { JsonObject, KubeObject, LoadedObject } from '../manifests/types.js';
import type { ReadinessGateMode } from '../options.js';
import type { Preflight } from '../plan/index.js';
import { objectsOfPhase, type PhaseName, type PlanRoute } from '../plan/phases.js';
import type { Logger } from '../report/log.js';
import { Timeline, type PhaseRecord, type TimelineEntry } from '../report/timeline.js';
import { waitUntil, WaitFailed, type CheckResult } from './wait.js';

export const GATE_LABEL = 'elbv2.k8s.aws/pod-readiness-gate-inject';
export const GATE_PREFIX = 'target-health.elbv2.k8s.aws/';

export interface DeployOptions {
  dryRun: boolean;
  forceConflicts: boolean;
  readinessGates: ReadinessGateMode;
  timeouts: { routingSeconds: number; rolloutSeconds: number };
  /**
   * How many AWS/Kubernetes seconds pass per real second. 1 against a real cluster; the lab's time scale
   * against the lab, so that "when can this target's state change next" is computed on the lab's clock.
   */
  timeScale: number;
}

export interface DeployDeps {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  log: Logger;
  now: () => number;
}

export type DeployResultKind = 'succeeded' | 'failed' | 'rolled-back';

export interface BindingInfo {
  route: PlanRoute;
  name: string;
  arn: string;
  targetType: string;
}

export interface DeployResult {
  result: DeployResultKind;
  /** Deployment revision after the run (first workload), and before it. */
  revision: string;
  previousRevision: string;
  durationSeconds: number;
  phases: PhaseRecord[];
  timeline: TimelineEntry[];
  loadBalancerHostnames: string[];
  targetGroupArns: string[];
  apiCalls: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
  /** What failed and in which phase, for the person on call. */
  error?: string;
  failedPhase?: string;
  applied: string[];
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly phase: string,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}

/** Runs the phases of DESIGN.md "Safe order" against a cluster. Preflight (load, tune, lint) has already run. */
export async function runDeploy(pre: Preflight, options: DeployOptions, deps: DeployDeps): Promise<DeployResult> {
  const tl = new Timeline(deps.now);
  const state: RunState = { applied: [], bindings: [], hostnames: new Map(), revisions: new Map(), previous: new Map() };
  let error: string | undefined;
  let failedPhase: string | undefined;
  try {
    await preflightPhase(pre, options, deps, tl);
    if (!options.dryRun) {
      await applyPhase('namespaces', pre, options, deps, tl, state);
      await applyPhase('config', pre, options, deps, tl, state);
      await applyPhase('routing', pre, options, deps, tl, state);
      await waitForRouting(pre, options, deps, tl, state);
      await workloadsPhase(pre, options, deps, tl, state);
      await verifyAttributes(pre, deps, tl, state);
    }
  } catch (err) {
    failedPhase = tl.phases.at(-1)?.name ?? 'preflight';
    error = err instanceof Error ? err.message : String(err);
    tl.add('error', error);
    if (!(err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError)) throw err;
  } finally {
    tl.endOpenPhase();
  }
  const first = pre.model.deployments[0];
  const key = first ? `${first.namespace}/${first.name}` : '';
  return {
    result: error ? 'failed' : 'succeeded',
    revision: String(state.revisions.get(key) ?? ''),
    previousRevision: String(state.previous.get(key) ?? ''),
    durationSeconds: tl.elapsedSeconds(),
    phases: tl.phases,
    timeline: tl.entries,
    loadBalancerHostnames: [...new Set(state.hostnames.values())],
    targetGroupArns: [...new Set(state.bindings.map((b) => b.arn))],
    apiCalls: { kubernetes: { ...deps.kube.calls }, elbv2: { ...deps.elbv2.calls } },
    ...(error ? { error, failedPhase } : {}),
    applied: state.applied,
  };
}

interface RunState {
  applied: string[];
  bindings: BindingInfo[];
  hostnames: Map<string, string>;
  revisions: Map<string, number>;
  previous: Map<string, number>;
}

function id(o: LoadedObject): string {
  return o.ref.namespace ? `${o.ref.kind} ${o.ref.namespace}/${o.ref.name}` : `${o.ref.kind} ${o.ref.name}`;
}

/** Server-side dry-run of every object; objects in namespaces that do not exist yet are checked right after those are created. */
async function preflightPhase(pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline): Promise<void> {
  tl.startPhase('preflight');
  const errors = pre.lint.findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) {
    throw new DeployError(
      `lint found ${errors.length} error(s); nothing was applied:\n${errors.map((f) => `  ${f.file}:${f.line} ${f.rule}: ${f.message}\n    fix: ${f.fix}`).join('\n')}`,
      'preflight',
    );
  }
  const missingNamespaces = await dryRunAll(pre.set.objects, deps);
  if (missingNamespaces.size > 0) {
    deps.log.info(`server-side dry-run of objects in ${[...missingNamespaces].join(', ')} runs after those namespaces are created`);
  }
  if (options.dryRun) tl.add('applied', `dry-run: ${pre.set.objects.length} object(s) validated by the API server; nothing applied`);
}

async function dryRunAll(objects: LoadedObject[], deps: DeployDeps, onlyNamespaces?: Set<string>): Promise<Set<string>> {
  const missing = new Set<string>();
  const existing = new Map<string, boolean>();
  const manifestNamespaces = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  const problems: string[] = [];
  for (const o of objects) {
    const ns = o.ref.namespace;
    if (onlyNamespaces && !onlyNamespaces.has(ns)) continue;
    if (ns && !existing.has(ns)) existing.set(ns, (await deps.kube.get('v1', 'Namespace', '', ns)) !== undefined);
    if (ns && !existing.get(ns)) {
      if (manifestNamespaces.has(ns)) {
        missing.add(ns);
        continue;
      }
      problems.push(`${o.source.file}:${o.source.line} ${id(o)}: namespace ${ns} does not exist and the manifests do not create it. Fix: add a Namespace manifest or create it first.`);
      continue;
    }
    try {
      await deps.kube.apply(o.object, { dryRun: true });
    } catch (err) {
      if (err instanceof KubeApiError) {
        problems.push(`${o.source.file}:${o.source.line} ${id(o)}: the API server rejects it: ${err.message}`);
      } else throw err;
    }
  }
  if (problems.length > 0) {
    throw new DeployError(`server-side dry-run failed; nothing was applied:\n${problems.map((p) => `  ${p}`).join('\n')}`, 'preflight');
  }
  return missing;
}

async function applyPhase(phase: PhaseName, pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const objects = objectsOfPhase(pre.set.objects, phase);
  const gateNamespaces = new Set(pre.plan.phases.flatMap((p) => p.waitFor.filter((w) => w.kind === 'namespace-label')).length > 0 ? gateNamespacesOf(pre) : []);
  if (objects.length === 0 && !(phase === 'namespaces' && gateNamespaces.size > 0)) return;
  tl.startPhase(phase);
  await deps.log.group(`Phase ${phase}`, async () => {
    for (const o of objects) {
      let obj = o.object;
      if (o.ref.kind === 'Namespace' && options.readinessGates === 'inject' && gateNamespaces.has(o.ref.name)) {
        obj = { ...obj, metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [GATE_LABEL]: 'enabled' } } };
      }
      await applyOne(o, obj, options, deps, tl, state);
    }
    if (phase === 'namespaces') {
      await ensureGateLabels(pre, gateNamespaces, options, deps, tl);
      // Objects in namespaces that did not exist at preflight: dry-run them now, before any of them is written.
      const created = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
      if (created.size > 0) await dryRunAll(pre.set.objects.filter((o) => o.ref.kind !== 'Namespace'), deps, created);
    }
  });
}

async function applyOne(o: LoadedObject, obj: KubeObject, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<KubeObject> {
  try {
    const result = await deps.kube.apply(obj, { force: options.forceConflicts });
    state.applied.push(id(o));
    tl.add('applied', `applied ${id(o)}`, { file: o.source.file, line: o.source.line });
    deps.log.info(`applied ${id(o)}`);
    return result;
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 409) {
      throw new DeployError(
        `${o.source.file}:${o.source.line} ${id(o)}: another field manager owns fields this apply changes: ${err.message}. ` +
          'Fix: remove those fields from the manifest, or re-run with --force-conflicts to take ownership (the other manager — often kubectl or a Helm release — will be overruled).',
        tl.phases.at(-1)?.name ?? 'apply',
      );
    }
    throw err;
  }
}

function gateNamespacesOf(pre: Preflight): string[] {
  const routes = pre.model.targetGroups.filter((tg) => tg.targetType === 'ip');
  return [...new Set(routes.map((r) => r.service.namespace))].filter((ns) => pre.model.deployments.some((d) => d.namespace === ns));
}

/** Namespaces that hold gated workloads but are not in the manifests: label them (inject) or require the label. */
async function ensureGateLabels(pre: Preflight, gateNamespaces: Set<string>, options: DeployOptions, deps: DeployDeps, tl: Timeline): Promise<void> {
  if (options.readinessGates === 'off') return;
  const inManifests = new Set(pre.set.objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  for (const ns of gateNamespaces) {
    const current = await deps.kube.get('v1', 'Namespace', '', ns);
    if (!current) throw new DeployError(`namespace ${ns} does not exist. Fix: add a Namespace manifest or create it first.`, 'namespaces');
    if (current.metadata.labels?.[GATE_LABEL] === 'enabled') continue;
    if (options.readinessGates === 'require') {
      throw new DeployError(
        `namespace ${ns} lacks the label ${GATE_LABEL}=enabled, so the AWS Load Balancer Controller will not inject readiness gates and old pods would be removed before new targets are healthy. ` +
          `Fix: kubectl label namespace ${ns} ${GATE_LABEL}=enabled (or run with --readiness-gates inject).`,
        'namespaces',
      );
    }
    if (inManifests.has(ns)) continue; // applied above with the label
    await deps.kube.patch('v1', 'Namespace', '', ns, { metadata: { labels: { [GATE_LABEL]: 'enabled' } } }, 'merge');
    tl.add('namespace-labelled', `labelled namespace ${ns} ${GATE_LABEL}=enabled`);
    deps.log.info(`labelled namespace ${ns} ${GATE_LABEL}=enabled (readiness gates are injected into pods created from now on)`);
  }
}

/** Phase 3's wait: every Ingress has an ALB hostname and every route has its TargetGroupBinding. */
async function waitForRouting(pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const routes: PlanRoute[] = pre.model.targetGroups.map((tg) => ({
    ingress: { namespace: tg.ingress.namespace, name: tg.ingress.name },
    service: { namespace: tg.service.namespace, name: tg.service.name },
    port: tg.port,
    targetType: tg.targetType,
  }));
  if (routes.length === 0) return;
  const namespaces = [...new Set(routes.flatMap((r) => [r.ingress.namespace, r.service.namespace]))];
  const ingresses = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: ns }));
  const bindings = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'TargetGroupBinding', namespace: ns }));
  const events = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'v1', kind: 'Event', namespace: ns, fieldSelector: 'involvedObject.kind=Ingress' }));
  const all = [...ingresses, ...bindings, ...events];
  const startedAt = deps.now();
  for (const i of all) i.start();
  try {
    await Promise.all(all.map((i) => i.hasSynced()));
    const check = (): CheckResult => {
      const pending: string[] = [];
      for (const r of routes) {
        const ing = ingresses.flatMap((i) => i.list()).find((o) => o.metadata.namespace === r.ingress.namespace && o.metadata.name === r.ingress.name);
        const failure = events
          .flatMap((i) => i.list())
          .find(
            (e) =>
              (e.involvedObject as JsonObject | undefined)?.name === r.ingress.name &&
              (e.metadata.namespace ?? '') === r.ingress.namespace &&
              ['FailedBuildModel', 'FailedDeployModel'].includes(String(e.reason)) &&
              Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0)) >= startedAt - 2000,
          );
        if (failure) {
          return {
            done: false,
            failed: true,
            message: `the AWS Load Balancer Controller rejected Ingress ${r.ingress.namespace}/${r.ingress.name}: ${String(failure.reason)} — ${String(failure.message)}. Fix the Ingress/Service annotations it names; \`kubectl describe ingress -n ${r.ingress.namespace} ${r.ingress.name}\` shows the events.`,
          };
        }
        const hostname = (((ing?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.hostname;
        if (typeof hostname !== 'string') pending.push(`ALB hostname for Ingress ${r.ingress.namespace}/${r.ingress.name}`);
        else state.hostnames.set(`${r.ingress.namespace}/${r.ingress.name}`, hostname);
        const tgb = bindings.flatMap((i) => i.list()).find((b) => bindingMatches(b, r, pre));
        if (!tgb) {
          pending.push(`TargetGroupBinding for Service ${r.service.namespace}/${r.service.name} port ${r.port}`);
          continue;
        }
        const spec = (tgb.spec ?? {}) as JsonObject;
        if (spec.targetType !== 'ip' && options.readinessGates !== 'off') {
          return {
            done: false,
            failed: true,
            message: `TargetGroupBinding ${tgb.metadata.name} for Service ${r.service.namespace}/${r.service.name} has targetType ${String(spec.targetType)}: readiness gates only work with ip targets. Fix: annotate the Ingress (or Service) with alb.ingress.kubernetes.io/target-type: ip, or run with --readiness-gates off.`,
          };
        }
      }
      return { done: pending.length === 0, message: pending.join('; ') };
    };
    await waitUntil(check, {
      what: 'waiting for the ALB and TargetGroupBindings',
      deadlineMs: options.timeouts.routingSeconds * 1000,
      recheckMs: 2000,
      log: deps.log,
      now: deps.now,
      subscribe: (fn) => {
        const offs = all.map((i) => i.onChange(fn));
        return () => offs.forEach((o) => o());
      },
    });
    for (const r of routes) {
      const tgb = bindings.flatMap((i) => i.list()).find((b) => bindingMatches(b, r, pre)) as KubeObject;
      const spec = (tgb.spec ?? {}) as JsonObject;
      const info: BindingInfo = { route: r, name: tgb.metadata.name, arn: String(spec.targetGroupARN ?? ''), targetType: String(spec.targetType ?? '') };
      state.bindings.push(info);
      tl.add('target-group-binding', `TargetGroupBinding ${info.name} (${info.targetType}) → ${info.arn}`, { service: `${r.service.namespace}/${r.service.name}`, arn: info.arn });
    }
    for (const [ing, host] of state.hostnames) tl.add('load-balancer', `Ingress ${ing} → ${host}`, { ingress: ing, hostname: host });
  } finally {
    await Promise.all(all.map((i) => i.stop()));
  }
}

function bindingMatches(tgb: KubeObject, r: PlanRoute, pre: Preflight): boolean {
  const spec = (tgb.spec ?? {}) as JsonObject;
  const ref = (spec.serviceRef ?? {}) as JsonObject;
  if ((tgb.metadata.namespace ?? '') !== r.service.namespace || ref.name !== r.service.name) return false;
  if (String(ref.port) === String(r.port)) return true;
  // The binding may name the port while the Ingress uses its number, or the other way round.
  const svc = pre.set.objects.find((o) => o.ref.kind === 'Service' && o.ref.namespace === r.service.namespace && o.ref.name === r.service.name);
  const ports = ((svc?.object.spec as JsonObject | undefined)?.ports ?? []) as JsonObject[];
  const port = ports.find((p) => String(p.port) === String(r.port) || p.name === r.port);
  return port !== undefined && (String(port.port) === String(ref.port) || port.name === ref.port);
}

interface WorkloadWatch {
  loaded: LoadedObject;
  namespace: string;
  name: string;
  selector: string;
  bindings: BindingInfo[];
  oldPodIps: Set<string>;
  previousRevision?: number;
}

/** Phase 4: record revisions, apply the workloads, wait until rollout, gates and target groups all agree. */
async function workloadsPhase(pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const objects = objectsOfPhase(pre.set.objects, 'workloads');
  if (objects.length === 0) return;
  tl.startPhase('workloads');
  const watches: WorkloadWatch[] = [];
  for (const o of objects.filter((x) => x.ref.kind === 'Deployment')) {
    const spec = (o.object.spec ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const current = await deps.kube.get('apps/v1', 'Deployment', o.ref.namespace, o.ref.name);
    const previousRevision = revisionOf(current);
    const pods = current ? (await deps.kube.list('v1', 'Pod', o.ref.namespace, { labelSelector: selector })).items : [];
    const model = pre.model.deployments.find((d) => d.namespace === o.ref.namespace && d.name === o.ref.name);
    const services = new Set((model?.services ?? []).map((s) => `${s.namespace}/${s.name}`));
    const bindings = state.bindings.filter((b) => services.has(`${b.route.service.namespace}/${b.route.service.name}`));
    watches.push({
      loaded: o,
      namespace: o.ref.namespace,
      name: o.ref.name,
      selector,
      bindings,
      oldPodIps: new Set(pods.map(podIp).filter((ip): ip is string => ip !== undefined)),
      ...(previousRevision !== undefined ? { previousRevision } : {}),
    });
    if (previousRevision !== undefined) {
      state.previous.set(`${o.ref.namespace}/${o.ref.name}`, previousRevision);
      tl.add('revision', `Deployment ${o.ref.namespace}/${o.ref.name} is at revision ${previousRevision} before the rollout`);
      warnUnprotectedOldPods(o.object, pods, bindings, deps.log, tl);
    }
  }
  for (const o of objects) await applyOne(o, o.object, options, deps, tl, state);
  for (const w of watches) await waitForWorkload(w, options, deps, tl, state);
}

/** Old pods only get what their own template had: say so before the rollout when the new template adds protection. */
function warnUnprotectedOldPods(next: KubeObject, oldPods: KubeObject[], bindings: BindingInfo[], log: Logger, tl: Timeline): void {
  const template = ((next.spec as JsonObject).template ?? {}) as JsonObject;
  const newContainers = (((template.spec as JsonObject | undefined)?.containers ?? []) as JsonObject[]);
  const newHasPreStop = newContainers.some((c) => (c.lifecycle as JsonObject | undefined)?.preStop !== undefined);
  const lacksPreStop = oldPods.filter((p) => !(((p.spec as JsonObject).containers ?? []) as JsonObject[]).some((c) => (c.lifecycle as JsonObject | undefined)?.preStop !== undefined));
  const gateNames = bindings.filter((b) => b.targetType === 'ip').map((b) => `${GATE_PREFIX}${b.name}`);
  const lacksGates = oldPods.filter((p) => gateNames.some((g) => !(((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).some((r) => r.conditionType === g)));
  if (newHasPreStop && lacksPreStop.length > 0) {
    const msg = `${lacksPreStop.length} running pod(s) of ${next.metadata.namespace}/${next.metadata.name} have no preStop hook: they get SIGTERM while the ALB may still route to them, so this one rollout can still serve a few 502/504s. Later rollouts are protected.`;
    log.warn(msg);
    tl.add('warning', msg);
  }
  if (lacksGates.length > 0) {
    const msg = `${lacksGates.length} running pod(s) of ${next.metadata.namespace}/${next.metadata.name} were created before the readiness gate existed; the new pods will carry it, so the rollout still waits for new targets to be healthy.`;
    log.info(msg);
    tl.add('warning', msg);
  }
}

function podIp(p: KubeObject): string | undefined {
  const ip = (p.status as JsonObject | undefined)?.podIP;
  return typeof ip === 'string' && ip !== '' ? ip : undefined;
}

function conditionStatus(p: KubeObject, type: string): string | undefined {
  const conditions = ((p.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[];
  const c = conditions.find((x) => x.type === type);
  return c ? String(c.status) : undefined;
}

async function waitForWorkload(w: WorkloadWatch, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const ns = w.namespace;
  const deployments = new Informer(deps.kube, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: ns, fieldSelector: `metadata.name=${w.name}` });
  const replicaSets = new Informer(deps.kube, { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: ns, labelSelector: w.selector });
  const pods = new Informer(deps.kube, { apiVersion: 'v1', kind: 'Pod', namespace: ns, labelSelector: w.selector });
  const slices = new Informer(deps.kube, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: ns });
  const informers = [deployments, replicaSets, pods, slices];
  informers.forEach((i) => i.start());
  const health = new Map<string, TargetHealth[]>();
  const seenStates = new Map<string, string>();
  const seenPods = new Map<string, string>();
  const gated = options.readinessGates !== 'off';
  const expectedGates = gated ? w.bindings.filter((b) => b.targetType === 'ip').map((b) => `${GATE_PREFIX}${b.name}`) : [];
  let awsListeners: Array<() => void> = [];
  const awsChanged = (): void => awsListeners.forEach((l) => l());
  const stopAws = new AbortController();
  const scale = options.timeScale;
  let nextDescribeAt = 0;
  // Describe target health when a state can change: right after a pod change (registration follows
  // endpoints), at the health-check interval while targets are initial/unhealthy, and when a drain can end.
  const describeLoop = (async () => {
    const intervalMs = Math.max(50, (15_000 / scale) / 3);
    while (!stopAws.signal.aborted) {
      const wait = Math.max(0, nextDescribeAt - deps.now());
      await new Promise((r) => setTimeout(r, Math.min(wait || intervalMs, intervalMs)));
      if (stopAws.signal.aborted) break;
      try {
        for (const b of w.bindings) {
          const targets = await deps.elbv2.targetHealth(b.arn);
          health.set(b.arn, targets);
          for (const t of targets) {
            const k = `${b.arn}|${t.id}:${t.port}`;
            if (seenStates.get(k) !== t.state) {
              seenStates.set(k, t.state);
              tl.add('target-state', `target ${t.id}:${t.port} ${t.state}${t.reason ? ` (${t.reason})` : ''}`, { targetGroup: b.name, target: `${t.id}:${t.port}`, state: t.state, reason: t.reason ?? null });
            }
          }
        }
        nextDescribeAt = deps.now() + intervalMs;
        awsChanged();
      } catch (err) {
        deps.log.warn(`DescribeTargetHealth failed, retrying: ${(err as Error).message}`);
      }
    }
  })();
  const offPods = pods.onChange(() => {
    nextDescribeAt = Math.min(nextDescribeAt, deps.now() + 50);
  });
  try {
    await Promise.all(informers.map((i) => i.hasSynced()));
    const check = (): CheckResult => {
      const d = deployments.list()[0];
      if (!d) return { done: false, message: `Deployment ${ns}/${w.name} not seen yet` };
      const revision = revisionOf(d);
      if (revision !== undefined) state.revisions.set(`${ns}/${w.name}`, revision);
      const status = deploymentRolloutStatus(d);
      if (!status.done && status.failed) {
        return { done: false, failed: true, message: `${status.message} (progressDeadlineSeconds). ${describePods(pods.list())}` };
      }
      const newRs = replicaSets.list().find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === String(revision) && ownedBy(rs, d));
      const hash = newRs?.metadata.labels?.['pod-template-hash'];
      const newPods = pods.list().filter((p) => hash !== undefined && p.metadata.labels?.['pod-template-hash'] === hash && !p.metadata.deletionTimestamp);
      for (const p of pods.list()) {
        const ready = conditionStatus(p, 'Ready') ?? 'Unknown';
        const sig = `${p.metadata.deletionTimestamp ? 'terminating' : 'live'}|${ready}`;
        if (seenPods.get(p.metadata.name) !== sig) {
          const first = !seenPods.has(p.metadata.name);
          seenPods.set(p.metadata.name, sig);
          if (p.metadata.deletionTimestamp) tl.add('pod-deleted', `pod ${p.metadata.name} terminating`, { pod: p.metadata.name });
          else if (first && !w.oldPodIps.has(podIp(p) ?? '')) tl.add('pod-created', `pod ${p.metadata.name} created`, { pod: p.metadata.name });
          if (ready === 'True' && !p.metadata.deletionTimestamp) tl.add('pod-ready', `pod ${p.metadata.name} Ready`, { pod: p.metadata.name, ip: podIp(p) ?? null });
        }
      }
      const pending: string[] = [];
      if (!status.done) pending.push(status.message);
      for (const p of newPods) {
        const gates = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
        const missing = expectedGates.filter((g) => !gates.includes(g));
        if (missing.length > 0) {
          return {
            done: false,
            failed: true,
            message: `new pod ${ns}/${p.metadata.name} was created without the readiness gate ${missing.join(', ')}: the AWS Load Balancer Controller's pod webhook (mpod.elbv2.k8s.aws) did not run — it admits pods ungated when the controller is down (failurePolicy Ignore). Old pods could be removed before the new targets are healthy, so the run stops here. Fix: check the controller (kubectl -n kube-system get pods -l app.kubernetes.io/name=aws-load-balancer-controller), then re-run; \`kubectl rollout restart deployment/${w.name} -n ${ns}\` recreates the pods with gates.`,
          };
        }
        for (const g of expectedGates) {
          if (conditionStatus(p, g) !== 'True') pending.push(`gate ${g.slice(GATE_PREFIX.length)} on ${p.metadata.name}`);
        }
      }
      // Target groups: new pods healthy, no old target draining, registered = ready endpoints.
      const readyEndpoints = readyEndpointIps(slices.list(), w.bindings);
      for (const b of w.bindings) {
        const targets = health.get(b.arn);
        if (!targets) {
          pending.push(`first DescribeTargetHealth of ${b.name}`);
          continue;
        }
        for (const p of newPods) {
          const ip = podIp(p);
          const t = targets.find((x) => x.id === ip);
          if (!t) pending.push(`${p.metadata.name} (${ip ?? 'no IP yet'}) not registered in ${b.name}`);
          else if (t.state !== 'healthy') pending.push(`${t.id}:${t.port} ${t.state}${t.reason ? ` (${t.reason})` : ''} in ${b.name}`);
        }
        const draining = targets.filter((t) => t.state === 'draining');
        if (draining.length > 0) pending.push(`${draining.length} old target(s) draining in ${b.name} (${draining.map((t) => t.id).join(', ')})`);
        const registered = new Set(targets.filter((t) => t.state !== 'draining' && t.state !== 'unused').map((t) => t.id));
        const endpoints = readyEndpoints.get(b.route.service.name) ?? new Set<string>();
        const extra = [...registered].filter((ip) => !endpoints.has(ip));
        const missing = [...endpoints].filter((ip) => !registered.has(ip));
        if (status.done && (extra.length > 0 || missing.length > 0)) {
          pending.push(`${b.name} targets ≠ ready endpoints (extra: ${extra.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'})`);
        }
      }
      return { done: pending.length === 0, message: pending.slice(0, 6).join('; ') + (pending.length > 6 ? `; +${pending.length - 6} more` : '') };
    };
    await waitUntil(check, {
      what: `rolling out Deployment ${ns}/${w.name}`,
      deadlineMs: options.timeouts.rolloutSeconds * 1000,
      recheckMs: 1000,
      log: deps.log,
      now: deps.now,
      subscribe: (fn) => {
        const offs = informers.map((i) => i.onChange(fn));
        awsListeners.push(fn);
        return () => {
          offs.forEach((o) => o());
          awsListeners = awsListeners.filter((l) => l !== fn);
        };
      },
    });
    deps.log.info(`Deployment ${ns}/${w.name} rolled out: revision ${state.revisions.get(`${ns}/${w.name}`) ?? '?'}, all new targets healthy, no target draining`);
  } finally {
    offPods();
    stopAws.abort();
    await describeLoop;
    await Promise.all(informers.map((i) => i.stop()));
  }
}

function ownedBy(child: KubeObject, owner: KubeObject): boolean {
  const refs = (child.metadata.ownerReferences ?? []) as JsonObject[];
  return refs.some((r) => r.uid === owner.metadata.uid);
}

function readyEndpointIps(slices: KubeObject[], bindings: BindingInfo[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const b of bindings) {
    const svc = b.route.service.name;
    const ips = new Set<string>();
    for (const s of slices.filter((x) => x.metadata.labels?.['kubernetes.io/service-name'] === svc)) {
      for (const e of (s.endpoints ?? []) as JsonObject[]) {
        const cond = (e.conditions ?? {}) as JsonObject;
        if (cond.ready === false || cond.terminating === true) continue;
        for (const a of (e.addresses ?? []) as string[]) ips.add(a);
      }
    }
    out.set(svc, ips);
  }
  return out;
}

function describePods(pods: KubeObject[]): string {
  const notReady = pods.filter((p) => conditionStatus(p, 'Ready') !== 'True');
  if (notReady.length === 0) return '';
  return `Pods not ready: ${notReady
    .slice(0, 5)
    .map((p) => {
      const statuses = ((p.status as JsonObject | undefined)?.containerStatuses ?? []) as JsonObject[];
      const waiting = statuses.map((c) => ((c.state as JsonObject | undefined)?.waiting as JsonObject | undefined)?.reason).filter(Boolean);
      return `${p.metadata.name}${waiting.length ? ` (${waiting.join(', ')})` : ''}`;
    })
    .join(', ')}`;
}

/** After the rollout: AWS holds the deregistration delay the tuner planned. */
async function verifyAttributes(pre: Preflight, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  for (const b of state.bindings) {
    const tg = pre.model.targetGroups.find((t) => t.service.namespace === b.route.service.namespace && t.service.name === b.route.service.name && String(t.port) === String(b.route.port));
    const expected = tg?.deregistrationDelaySeconds;
    if (expected === undefined || !b.arn) continue;
    const attrs = await deps.elbv2.attributes(b.arn);
    const actual = attrs['deregistration_delay.timeout_seconds'];
    if (actual !== String(expected)) {
      throw new DeployError(
        `target group ${b.name} has deregistration_delay.timeout_seconds=${actual ?? '(unset)'} on AWS, expected ${expected} from the manifests. The controller may not have reconciled the annotation yet, or another annotation wins (the Service's target-group-attributes replaces the Ingress's as a whole). Fix: check \`kubectl describe ingress\` events, then re-run.`,
        'workloads',
      );
    }
    tl.add('attribute-verified', `target group ${b.name}: deregistration_delay.timeout_seconds=${actual} on AWS`, { arn: b.arn, value: actual });
  }
}
