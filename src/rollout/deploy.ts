import type { Elbv2Reader, TargetHealth } from '../aws/elbv2.js';
import { ExitCode, exitCodeOf, InputError, UnreachableError } from '../errors.js';
import { KubeApiError, type KubeClient } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { deploymentRolloutStatus, REVISION_ANNOTATION, revisionOf } from '../kube/rollout-status.js';
import { buildModel } from '../manifests/model.js';
import type { JsonObject, KubeObject, LoadedObject, ManifestSet } from '../manifests/types.js';
import type { ReadinessGateMode } from '../options.js';
import type { Preflight } from '../plan/index.js';
import { objectsOfPhase, type PhaseName, type PlanRoute } from '../plan/phases.js';
import type { Logger } from '../report/log.js';
import { Timeline, type PhaseRecord, type TimelineEntry } from '../report/timeline.js';
import { waitUntil, WaitFailed, type CheckResult } from './wait.js';
import { awsClock, type AwsClock } from '../aws/clock.js';
import { describeDecision, type Decision, type GuardOptions, type PeriodReader } from '../guard/index.js';
import { GuardTripped, startGuard, summarizeMeasurements, type GuardRun } from './guarding.js';
import { rollbackAndWait, type RollbackResult } from './rollback.js';

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
  /** The 5xx guard from the workloads phase to the end of the bake window; undefined or disabled: no guard. */
  guard?: GuardOptions;
  /** On a guard failure: roll back to the previous revision (auto) or only report (off). */
  rollback?: 'auto' | 'off';
}

export interface DeployDeps {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  log: Logger;
  now: () => number;
  /** For the guard's CloudWatch signal. */
  cloudwatch?: PeriodReader;
  /** AWS time (the lab's compressed clock); default wall-clock time at `timeScale`. */
  clock?: AwsClock;
  /** Maps an ALB hostname to the URL the probe uses (the lab); default http://<hostname>/. */
  probeUrlFor?: (hostname: string) => Promise<string | undefined>;
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
  apiCalls: {
    kubernetes: Record<string, number>;
    elbv2: Record<string, number>;
    /** ELBv2 attempts answered with a throttling error (each retried with backoff and jitter). */
    throttled: { elbv2: number };
    /** Requests sent again after a transient failure (Kubernetes: 429/5xx/reset; ELBv2: throttling/5xx), by verb or action. */
    retried: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
  };
  /** What failed and in which phase, for the person on call. */
  error?: string;
  failedPhase?: string;
  /** The guard's decision and what each signal measured (when the guard ran). */
  guard?: { decision: Decision; signals: ReturnType<typeof summarizeMeasurements>; skipped: string[] };
  /** The rollback the guard triggered, per Deployment. */
  rollbacks?: RollbackResult[];
  /** DESIGN.md "Interfaces": 0 succeeded; 1 failed or rolled back; 2 invalid input (nothing applied); 3 cluster or AWS unreachable. */
  exitCode: ExitCode;
  applied: string[];
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly phase: string,
    /** 1 by default; 2 when the input is invalid and nothing was applied. */
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}

/** Runs the phases of DESIGN.md "Safe order" against a cluster. Preflight (load, tune, lint) has already run. */
export async function runDeploy(pre: Preflight, options: DeployOptions, deps: DeployDeps): Promise<DeployResult> {
  const tl = new Timeline(deps.now);
  const state = newRunState(false);
  let error: string | undefined;
  let failedPhase: string | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  let rolledBack = false;
  const rollbacks: RollbackResult[] = [];
  try {
    try {
      await preflightPhase(pre, options, deps, tl, state);
      if (!options.dryRun) {
        await applyPhase('namespaces', pre, options, deps, tl, state);
        await applyPhase('config', pre, options, deps, tl, state);
        await applyPhase('routing', pre, options, deps, tl, state);
        await waitForRouting(pre, options, deps, tl, state);
        await workloadsPhase(pre, options, deps, tl, state);
        await verifyAttributes(pre, options, deps, tl, state);
        await bakePhase(deps, tl, state);
      }
    } catch (err) {
      // The new version was applied and did not become healthy, or the guard saw it fail: put the previous one back.
      const workloadFailure = err instanceof WaitFailed && state.watches.length > 0 && state.workloadsApplied;
      if (!(err instanceof GuardTripped) && !workloadFailure) throw err;
      failedPhase = tl.phases.at(-1)?.name ?? 'workloads';
      rolledBack = await rollbackPhase(pre, options, deps, tl, state, rollbacks);
      throw err;
    }
  } catch (err) {
    failedPhase ??= tl.phases.at(-1)?.name ?? 'preflight';
    error = err instanceof Error ? err.message : String(err);
    // 401: the kubeconfig's credentials are rejected (an expired EKS token…): the cluster cannot be used, like unreachable.
    exitCode = err instanceof KubeApiError && err.code === 401 ? ExitCode.unreachable : exitCodeOf(err);
    if (err instanceof GuardTripped) error = guardFailureMessage(err, rolledBack, rollbacks);
    else if (rollbacks.length > 0 || (options.rollback === 'off' && state.workloadsApplied && err instanceof WaitFailed)) error = `${error}\n${rollbackOutcome(rolledBack, rollbacks)}`;
    tl.add('error', error, { exitCode });
    if (!(err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError || err instanceof UnreachableError || err instanceof GuardTripped)) throw err;
  } finally {
    tl.endOpenPhase();
    if (state.guard) await state.guard.guard.stop();
  }
  const first = pre.model.deployments[0];
  return runResult(first ? `${first.namespace}/${first.name}` : '', rolledBack ? 'rolled-back' : error ? 'failed' : 'succeeded', tl, state, deps, {
    ...(error ? { error, failedPhase: failedPhase ?? 'preflight' } : {}),
    ...(state.guard
      ? { guard: { decision: state.guard.tripped() ?? state.guard.guard.decision(), signals: summarizeMeasurements(state.guard.measurements), skipped: state.guard.skipped } }
      : {}),
    ...(rollbacks.length > 0 ? { rollbacks } : {}),
    exitCode,
  });
}

function newRunState(rollingBack: boolean): RunState {
  return {
    applied: [],
    bindings: [],
    hostnames: new Map(),
    revisions: new Map(),
    previous: new Map(),
    labelledInCluster: new Set(),
    watches: [],
    newPodIps: new Set(),
    rollingBack,
    workloadsApplied: rollingBack,
  };
}

/** The result of a run as data: what it saw (timeline, phases), where it left things, and how many API calls it made. */
function runResult(
  key: string,
  result: DeployResultKind,
  tl: Timeline,
  state: RunState,
  deps: DeployDeps,
  outcome: Pick<DeployResult, 'exitCode'> & Partial<Pick<DeployResult, 'error' | 'failedPhase' | 'guard' | 'rollbacks'>>,
): DeployResult {
  return {
    result,
    revision: String(state.revisions.get(key) ?? ''),
    previousRevision: String(state.previous.get(key) ?? ''),
    durationSeconds: tl.elapsedSeconds(),
    phases: tl.phases,
    timeline: tl.entries,
    loadBalancerHostnames: [...new Set(state.hostnames.values())],
    targetGroupArns: [...new Set(state.bindings.map((b) => b.arn))],
    apiCalls: {
      kubernetes: { ...deps.kube.calls },
      elbv2: { ...deps.elbv2.calls },
      throttled: { elbv2: deps.elbv2.throttled.count },
      retried: { kubernetes: { ...deps.kube.retries }, elbv2: { ...deps.elbv2.retried } },
    },
    applied: state.applied,
    ...outcome,
  };
}

interface RunState {
  applied: string[];
  bindings: BindingInfo[];
  hostnames: Map<string, string>;
  revisions: Map<string, number>;
  previous: Map<string, number>;
  /** Namespaces whose gate label was found in the cluster although the manifests lack it (kept on apply). */
  labelledInCluster: Set<string>;
  watches: WorkloadWatch[];
  /** IPs of the new version's pods, for the guard's target-health signal. */
  newPodIps: Set<string>;
  guard?: GuardRun;
  /** While rolling back, the waits do not stop on the (already handled) guard failure. */
  rollingBack: boolean;
  /** The new workload templates were written: a failure from here on leaves the previous revision to go back to. */
  workloadsApplied: boolean;
}

function id(o: LoadedObject): string {
  return o.ref.namespace ? `${o.ref.kind} ${o.ref.namespace}/${o.ref.name}` : `${o.ref.kind} ${o.ref.name}`;
}

/** Lint errors stop the run; then a server-side dry-run of every object (those in namespaces the run creates: right after they exist). */
async function preflightPhase(pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  tl.startPhase('preflight');
  const errors: string[] = [];
  for (const f of pre.lint.findings.filter((x) => x.severity === 'error')) {
    let extra = '';
    if (f.rule === 'readiness-gate-label') {
      // The label may have been added outside these manifests (kubectl label, as the fix says): the cluster decides.
      const ns = f.object.name;
      const live = await deps.kube.get('v1', 'Namespace', '', ns);
      if (live?.metadata.labels?.[GATE_LABEL] === 'enabled') {
        state.labelledInCluster.add(ns);
        deps.log.info(`namespace ${ns} carries ${GATE_LABEL}=enabled in the cluster (not in the manifests): readiness gates will be injected; the label is kept on apply`);
        continue;
      }
      if (live) extra = `\n    or label the existing namespace now: kubectl label namespace ${ns} ${GATE_LABEL}=enabled (then re-run; the label is kept), or re-run with --readiness-gates inject to let alb-rollout add it`;
    }
    errors.push(`  ${f.file}:${f.line} ${f.rule}: ${f.message}\n    fix: ${f.fix}${extra}`);
  }
  if (errors.length > 0) {
    throw new DeployError(`lint found ${errors.length} error(s); nothing was applied:\n${errors.join('\n')}`, 'preflight');
  }
  const missingNamespaces = await dryRunAll(pre.set.objects, options, deps);
  if (missingNamespaces.size > 0) {
    const waiting = pre.set.objects.filter((o) => o.ref.kind !== 'Namespace' && missingNamespaces.has(o.ref.namespace));
    if (options.dryRun) {
      const msg = `${waiting.length} object(s) in namespace(s) ${[...missingNamespaces].join(', ')} were not validated by the API server: those namespaces do not exist yet (a dry-run creates nothing); a real run validates them right after creating the namespaces, before applying anything else`;
      deps.log.warn(msg);
      tl.add('warning', msg);
    } else {
      deps.log.info(`server-side dry-run of objects in ${[...missingNamespaces].join(', ')} runs after those namespaces are created`);
    }
  }
  if (options.dryRun) {
    const validated = pre.set.objects.filter((o) => !missingNamespaces.has(o.ref.namespace) || o.ref.kind === 'Namespace').length;
    tl.add('applied', `dry-run: ${validated} of ${pre.set.objects.length} object(s) validated by the API server; nothing applied`);
    deps.log.info(`dry-run: ${validated} of ${pre.set.objects.length} object(s) validated by the API server; nothing was applied`);
  }
}

/** A field path from an API Status cause (".spec.replicas", "spec.template.spec.containers[0].image", `containers[name="app"]`). */
function fieldPath(field: string, obj: KubeObject): Array<string | number> {
  const out: Array<string | number> = [];
  let node: unknown = obj;
  for (const part of field.replace(/^\./, '').split('.').filter(Boolean)) {
    const m = /^([^[]+)((?:\[[^\]]*\])*)$/.exec(part);
    if (!m) break;
    out.push(m[1] as string);
    node = (node as JsonObject | undefined)?.[m[1] as string];
    for (const sel of (m[2] ?? '').match(/\[[^\]]*\]/g) ?? []) {
      const inner = sel.slice(1, -1);
      let index = /^\d+$/.test(inner) ? Number(inner) : -1;
      const kv = /^(\w+)="?([^"]*)"?$/.exec(inner);
      if (kv && Array.isArray(node)) index = (node as JsonObject[]).findIndex((x) => String(x?.[kv[1] as string]) === kv[2]);
      if (index < 0) return out;
      out.push(index);
      node = Array.isArray(node) ? node[index] : undefined;
    }
  }
  return out;
}

/** "file:line" of the field an API error names (its first cause with a field), else of the object. */
function whereRejected(o: LoadedObject, err: KubeApiError): string {
  const causes = (((err.status?.details as JsonObject | undefined)?.causes ?? []) as JsonObject[]).filter((c) => typeof c.field === 'string' && c.field !== '');
  const first = causes[0];
  const at = first ? o.locate(fieldPath(String(first.field), o.object)) : o.source;
  return `${at.file}:${at.line}`;
}

async function dryRunAll(objects: LoadedObject[], options: Pick<DeployOptions, 'forceConflicts'>, deps: DeployDeps, onlyNamespaces?: Set<string>): Promise<Set<string>> {
  const missing = new Set<string>();
  const existing = new Map<string, boolean>();
  const manifestNamespaces = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  const problems: string[] = [];
  let invalid = false;
  const conflicts: string[] = [];
  for (const o of objects) {
    const ns = o.ref.namespace;
    if (onlyNamespaces && !onlyNamespaces.has(ns)) continue;
    if (ns && !existing.has(ns)) existing.set(ns, (await deps.kube.get('v1', 'Namespace', '', ns)) !== undefined);
    if (ns && !existing.get(ns)) {
      if (manifestNamespaces.has(ns)) {
        missing.add(ns);
        continue;
      }
      invalid = true;
      problems.push(`${o.source.file}:${o.source.line} ${id(o)}: expected namespace ${ns} to exist, but it does not and the manifests do not create it. Fix: add a Namespace manifest or create it first (kubectl create namespace ${ns}).`);
      continue;
    }
    try {
      await deps.kube.apply(o.object, { dryRun: true, force: options.forceConflicts });
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      if (err.code === 409) {
        conflicts.push(id(o));
        problems.push(`${whereRejected(o, err)} ${id(o)}: another field manager owns fields this apply would change: ${err.message}`);
      } else {
        // 400/404/422: the object itself is wrong (schema, validation, a kind the cluster does not serve).
        if (err.code === 400 || err.code === 404 || err.code === 422) invalid = true;
        problems.push(`${whereRejected(o, err)} ${id(o)}: the API server rejects it: ${err.message}`);
      }
    }
  }
  if (problems.length > 0) {
    const fixes: string[] = [];
    if (conflicts.length > 0) {
      fixes.push(
        'Fix the conflicts: remove those fields from the manifests (let the other manager own them), or re-run with --force-conflicts to take ownership ' +
          '(the other manager — often kubectl, a Helm release or an autoscaler — is overruled and may change them back).',
      );
    }
    if (invalid) fixes.push('Fix the manifests at the lines named above and re-run (`alb-rollout deploy --dry-run` checks them without applying).');
    throw new DeployError(
      `server-side dry-run failed; nothing was applied:\n${problems.map((p) => `  ${p}`).join('\n')}\n${fixes.join('\n')}`,
      'preflight',
      invalid ? ExitCode.invalidInput : ExitCode.failed,
    );
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
      const keepLabel = options.readinessGates !== 'off' && state.labelledInCluster.has(o.ref.name);
      if (o.ref.kind === 'Namespace' && ((options.readinessGates === 'inject' && gateNamespaces.has(o.ref.name)) || keepLabel)) {
        obj = { ...obj, metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [GATE_LABEL]: 'enabled' } } };
      }
      await applyOne(o, obj, options, deps, tl, state);
    }
    if (phase === 'namespaces') {
      await ensureGateLabels(pre, gateNamespaces, options, deps, tl);
      // Objects in namespaces that did not exist at preflight: dry-run them now, before any of them is written.
      const created = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
      if (created.size > 0) await dryRunAll(pre.set.objects.filter((o) => o.ref.kind !== 'Namespace'), options, deps, created);
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
        `${whereRejected(o, err)} ${id(o)}: another field manager owns fields this apply changes: ${err.message}. ` +
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
    const check = (): CheckResult => {
      const unsynced = unsyncedMessage(all);
      if (unsynced) return { done: false, message: unsynced };
      const pending: string[] = [];
      for (const r of routes) {
        const ingName = `${r.ingress.namespace}/${r.ingress.name}`;
        const ing = ingresses.flatMap((i) => i.list()).find((o) => o.metadata.namespace === r.ingress.namespace && o.metadata.name === r.ingress.name);
        const verdict = controllerVerdict(events.flatMap((i) => i.list()), r.ingress, startedAt);
        if (verdict?.permanent) {
          return {
            done: false,
            failed: true,
            message:
              `expected the AWS Load Balancer Controller to build an ALB for Ingress ${ingName}, but it rejected it: ${verdict.reason} — ${verdict.message}. ` +
              `Fix the Ingress/Service (annotations, backend Service type and port) as the message says, then re-run; \`kubectl describe ingress -n ${r.ingress.namespace} ${r.ingress.name}\` shows the events.`,
          };
        }
        const hostname = (((ing?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.hostname;
        if (typeof hostname !== 'string') {
          pending.push(
            `ALB hostname for Ingress ${ingName}${verdict ? ` (the controller's last attempt failed, it retries: ${verdict.reason} — ${verdict.message})` : ing ? '' : ' (Ingress not seen yet)'}`,
          );
        } else state.hostnames.set(ingName, hostname);
        const tgb = bindings.flatMap((i) => i.list()).find((b) => bindingMatches(b, r, pre));
        if (!tgb) {
          pending.push(`TargetGroupBinding for Service ${r.service.namespace}/${r.service.name} port ${r.port} (created by the controller with the ALB)`);
          continue;
        }
        const spec = (tgb.spec ?? {}) as JsonObject;
        if (spec.targetType !== 'ip' && options.readinessGates !== 'off') {
          return {
            done: false,
            failed: true,
            message: `expected an ip TargetGroupBinding for Service ${r.service.namespace}/${r.service.name}, but ${tgb.metadata.name} has targetType ${String(spec.targetType)}: readiness gates only work with ip targets. Fix: annotate the Ingress (or Service) with alb.ingress.kubernetes.io/target-type: ip, or run with --readiness-gates off.`,
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
      hint:
        'Fix: check that the AWS Load Balancer Controller runs and handles the IngressClass (kubectl get ingressclass; kubectl -n kube-system logs deployment/aws-load-balancer-controller), ' +
        `and read the Ingress events (kubectl describe ingress -n ${routes[0]?.ingress.namespace ?? ''} ${routes[0]?.ingress.name ?? ''}); raise --routing-timeout if the controller is only slow.`,
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

/**
 * While an informer has not listed yet: which, and the last error (retried with backoff; the wait's deadline still
 * applies). Errors that retrying cannot fix (a kind the cluster does not serve, RBAC) end the wait at once.
 */
function unsyncedMessage(informers: Informer[]): string | undefined {
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

/** AWS/controller errors that go away by themselves: LBC requeues the Ingress with backoff. */
const TRANSIENT_CONTROLLER_ERROR = /throttl|rate exceeded|requestlimitexceeded|toomanyrequests|internalfailure|internal ?error|serviceunavailable|service unavailable|timed out|timeout|connection reset|EOF/i;

/**
 * The controller's latest verdict on an Ingress since this run started: a FailedBuildModel (the model cannot be built
 * from these objects: permanent until they change) or a FailedDeployModel (permanent unless it is an AWS hiccup such
 * as throttling), unless a later SuccessfullyReconciled supersedes it.
 */
function controllerVerdict(events: KubeObject[], ingress: { namespace: string; name: string }, startedAt: number): { reason: string; message: string; permanent: boolean } | undefined {
  const when = (e: KubeObject): number => Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0)) || 0;
  const mine = events.filter(
    (e) =>
      (e.involvedObject as JsonObject | undefined)?.name === ingress.name &&
      (e.metadata.namespace ?? '') === ingress.namespace &&
      // Event times have whole seconds: allow the second the run started in.
      when(e) >= startedAt - 2000,
  );
  const failures = mine.filter((e) => e.reason === 'FailedBuildModel' || e.reason === 'FailedDeployModel').sort((a, b) => when(b) - when(a));
  const latest = failures[0];
  if (!latest) return undefined;
  const success = mine.find((e) => e.reason === 'SuccessfullyReconciled' && when(e) > when(latest));
  if (success) return undefined;
  const message = String(latest.message ?? '');
  const permanent = latest.reason === 'FailedBuildModel' || !TRANSIENT_CONTROLLER_ERROR.test(message);
  return { reason: String(latest.reason), message, permanent };
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
  /** Pods that existed before this run applied the workload: they may predate the TargetGroupBinding (no gate). */
  oldPodUids: Set<string>;
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
      oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
      ...(previousRevision !== undefined ? { previousRevision } : {}),
    });
    if (previousRevision !== undefined) {
      state.previous.set(`${o.ref.namespace}/${o.ref.name}`, previousRevision);
      tl.add('revision', `Deployment ${o.ref.namespace}/${o.ref.name} is at revision ${previousRevision} before the rollout`);
      warnUnprotectedOldPods(o.object, pods, bindings, deps.log, tl);
    }
  }
  state.watches = watches;
  for (const o of objects) await applyOne(o, o.object, options, deps, tl, state);
  state.workloadsApplied = true;
  if (options.guard?.enabled && state.bindings.length > 0) {
    state.guard = await startGuard(
      options.guard,
      { hostnames: [...new Set(state.hostnames.values())], targetGroupArns: [...new Set(state.bindings.map((b) => b.arn))], newTargets: () => state.newPodIps },
      {
        elbv2: deps.elbv2,
        ...(deps.cloudwatch ? { cloudwatch: deps.cloudwatch } : {}),
        clock: deps.clock ?? awsClock(options.timeScale, deps.now()),
        log: deps.log,
        now: deps.now,
        ...(deps.probeUrlFor ? { probeUrlFor: deps.probeUrlFor } : {}),
      },
      tl,
    );
  }
  for (const w of watches) await waitForWorkload(w, pre, options, deps, tl, state);
}

/** Phase 5: the guard keeps watching for the bake window; a failure there rolls back like one during the rollout. */
async function bakePhase(deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const run = state.guard;
  if (!run) return;
  const tripped = run.tripped();
  if (tripped) throw new GuardTripped(tripped);
  tl.startPhase('bake');
  run.guard.startBake();
  deps.log.info(`baking for ${run.guard.policy.bakeSeconds}s with the guard watching`);
  const decision = await run.guard.done;
  if (decision.verdict === 'fail') throw new GuardTripped(decision);
  tl.add('guard', describeDecision(decision), { verdict: decision.verdict });
  deps.log.info(describeDecision(decision));
}

/** The guard failed: put every changed Deployment back to its previous revision and wait for it as for a deploy. */
async function rollbackPhase(
  pre: Preflight,
  options: DeployOptions,
  deps: DeployDeps,
  tl: Timeline,
  state: RunState,
  out: RollbackResult[],
): Promise<boolean> {
  if (options.rollback === 'off') {
    tl.add('rollback', 'rollback off: reporting only');
    deps.log.warn('guard failed and --rollback off: the new version stays; nothing was rolled back');
    return false;
  }
  tl.startPhase('rollback');
  state.rollingBack = true;
  let rolledBack = false;
  for (const w of state.watches) {
    const pods = (await deps.kube.list('v1', 'Pod', w.namespace, { labelSelector: w.selector })).items;
    const result = await rollbackAndWait(deps.kube, w.namespace, w.name, { now: deps.now }, async (target) => {
      tl.add('rollback', `Deployment ${w.namespace}/${w.name}: revision ${target.fromRevision} → template of revision ${target.toRevision} written`, { from: target.fromRevision, to: target.toRevision });
      deps.log.warn(`rolling back Deployment ${w.namespace}/${w.name} to the template of revision ${target.toRevision}; waiting with the same rules (gates, healthy targets, drain)`);
      await waitForWorkload(
        { ...w, selector: target.selector, oldPodIps: target.oldPodIps, oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))), previousRevision: target.fromRevision },
        pre,
        options,
        deps,
        tl,
        state,
      ).catch((err: unknown) => {
        throw new DeployError(
          `the previous template of Deployment ${w.namespace}/${w.name} (revision ${target.toRevision}) was written back, but the rollback did not complete safely: ${(err as Error).message}`,
          'rollback',
        );
      });
    });
    out.push(result);
    tl.add('rollback', result.message, { outcome: result.outcome });
    if (result.outcome === 'rolled-back') rolledBack = true;
  }
  return rolledBack;
}

function rollbackOutcome(rolledBack: boolean, rollbacks: RollbackResult[]): string {
  if (rolledBack) {
    return `Rolled back: ${rollbacks
      .filter((r) => r.outcome === 'rolled-back')
      .map((r) => `${r.namespace}/${r.name} revision ${'fromRevision' in r ? r.fromRevision : '?'} → template of revision ${'toRevision' in r ? r.toRevision : '?'}`)
      .join(', ')}; the previous version is serving again.`;
  }
  if (rollbacks.some((r) => r.outcome === 'nothing-to-roll-back')) {
    return 'Nothing to roll back to (first install): the new version is still running. Fix the release and deploy again, or delete it.';
  }
  return 'Not rolled back (--rollback off): the new version is still running; roll back with `alb-rollout rollback` or fix forward.';
}

function guardFailureMessage(trip: GuardTripped, rolledBack: boolean, rollbacks: RollbackResult[]): string {
  const d = trip.decision;
  const evidence = (d.failingWindows ?? []).slice(0, 3).map((m) => `  ${m.window.start} ${m.signal}: ${m.evidence}`);
  const after = rollbackOutcome(rolledBack, rollbacks);
  return `expected the new version to serve without errors, but the guard saw: ${d.reason}${d.firstErrorAt ? ` (first error at ${d.firstErrorAt})` : ''}.${evidence.length ? `\n${evidence.join('\n')}` : ''}\n${after}`;
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

async function waitForWorkload(w: WorkloadWatch, pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
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
  let awsError: Error | undefined;
  let wakeDescribe: (() => void) | undefined;
  // Describe target health when a state can change: right after a pod change (registration follows
  // endpoints), at the health-check interval while targets are initial/unhealthy, and when a drain can end.
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
        for (const b of w.bindings) {
          const targets = await deps.elbv2.targetHealth(b.arn, stopAws.signal);
          health.set(b.arn, targets);
          for (const t of targets) {
            const k = `${b.arn}|${t.id}:${t.port}`;
            if (seenStates.get(k) !== t.state) {
              seenStates.set(k, t.state);
              tl.add('target-state', `target ${t.id}:${t.port} ${t.state}${t.reason ? ` (${t.reason})` : ''}`, { targetGroup: b.name, target: `${t.id}:${t.port}`, state: t.state, reason: t.reason ?? null });
            }
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
  const offPods = pods.onChange(() => {
    nextDescribeAt = Math.min(nextDescribeAt, deps.now() + 50);
  });
  const stopWaiting = (): void => {
    stopAws.abort();
    wakeDescribe?.();
  };
  try {
    const check = (): CheckResult => {
      if (awsError instanceof UnreachableError) throw awsError;
      const unsynced = unsyncedMessage(informers);
      if (unsynced) return { done: false, message: unsynced };
      const d = deployments.list()[0];
      if (!d) return { done: false, message: `Deployment ${ns}/${w.name} not seen yet` };
      const revision = revisionOf(d);
      if (revision !== undefined) state.revisions.set(`${ns}/${w.name}`, revision);
      const status = deploymentRolloutStatus(d);
      const newRs = replicaSets.list().find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === String(revision) && ownedBy(rs, d));
      const hash = newRs?.metadata.labels?.['pod-template-hash'];
      const newPods = pods.list().filter((p) => hash !== undefined && p.metadata.labels?.['pod-template-hash'] === hash && !p.metadata.deletionTimestamp);
      const tripped = state.rollingBack ? undefined : state.guard?.tripped();
      if (tripped) throw new GuardTripped(tripped);
      if (!state.rollingBack) for (const p of newPods) if (podIp(p)) state.newPodIps.add(podIp(p) as string);
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
      // Pods created by this run (after the TargetGroupBinding existed) must carry the gate; older pods of the same
      // template (a scale-up without a template change) were announced by warnUnprotectedOldPods.
      for (const p of newPods.filter((x) => !w.oldPodUids.has(String(x.metadata.uid ?? '')))) {
        const gates = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
        const missing = expectedGates.filter((g) => !gates.includes(g));
        if (missing.length > 0) {
          return {
            done: false,
            failed: true,
            message: `expected every new pod to carry the readiness gate ${missing.join(', ')}, but new pod ${ns}/${p.metadata.name} was created without it: the AWS Load Balancer Controller's pod webhook (mpod.elbv2.k8s.aws) did not run — it admits pods ungated when the controller is down (failurePolicy Ignore). Old pods could be removed before the new targets are healthy, so the run stops here. Fix: check the controller (kubectl -n kube-system get pods -l app.kubernetes.io/name=aws-load-balancer-controller; kubectl get mutatingwebhookconfigurations), then re-run; \`kubectl rollout restart deployment/${w.name} -n ${ns}\` recreates the pods with gates.`,
          };
        }
      }
      const diag = diagnoseWorkload(newPods, w.bindings, health, expectedGates);
      const hints = (): string => workloadHints(diag, w, pre, ns);
      if (diag.crashLooping.length > 0) {
        const head = `expected the new pods of Deployment ${ns}/${w.name} to start, but ${diag.crashLooping.length} crash-loop (CrashLoopBackOff after ${CRASH_LOOP_RESTARTS}+ restarts): ${diag.crashLooping.slice(0, 3).join(', ')}. The release cannot start; waiting for the progress deadline would not change that.`;
        return { done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail}\n${hints()}` };
      }
      if (!status.done && status.failed) {
        const cond = ((((d.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]).find((c) => c.type === 'Progressing') ?? {}) as JsonObject;
        const deadline = Number((d.spec as JsonObject | undefined)?.progressDeadlineSeconds ?? 600);
        const head =
          `expected Deployment ${ns}/${w.name} to progress, but Kubernetes reports ProgressDeadlineExceeded: ${String(cond.message ?? status.message)} ` +
          `(no progress for progressDeadlineSeconds=${deadline}s).`;
        return { done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail || '  (no new pod seen)'}\n${hints()}` };
      }
      const pending: string[] = [];
      if (!status.done) pending.push(status.message);
      if (awsError) pending.push(`DescribeTargetHealth failing, retrying: ${awsError.message}`);
      // Target groups: registered = ready endpoints once the rollout is done.
      const readyEndpoints = readyEndpointIps(slices.list(), w.bindings);
      const mismatch: string[] = [];
      for (const b of w.bindings) {
        const targets = health.get(b.arn);
        if (!targets) continue;
        const registered = new Set(targets.filter((t) => t.state !== 'draining' && t.state !== 'unused').map((t) => t.id));
        const endpoints = readyEndpoints.get(b.route.service.name) ?? new Set<string>();
        const extra = [...registered].filter((ip) => !endpoints.has(ip));
        const missing = [...endpoints].filter((ip) => !registered.has(ip));
        if (status.done && (extra.length > 0 || missing.length > 0)) {
          mismatch.push(`${b.name} targets ≠ ready endpoints (extra: ${extra.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'})`);
        }
      }
      const done = pending.length === 0 && diag.pending === 0 && mismatch.length === 0;
      const message = [...pending, diag.oneLine, ...mismatch].filter(Boolean).join('; ');
      const detail = [pending.length > 0 ? `  rollout: ${pending.join('; ')}` : '', diag.detail, ...mismatch.map((m) => `  ${m}`)].filter(Boolean).join('\n');
      return { done, message: truncate(message, 600), detail: `\n${detail}`, hint: hints() };
    };
    await waitUntil(check, {
      what: `rolling out Deployment ${ns}/${w.name}`,
      deadlineMs: options.timeouts.rolloutSeconds * 1000,
      recheckMs: 1000,
      log: deps.log,
      now: deps.now,
      subscribe: (fn) => {
        const offs = informers.map((i) => i.onChange(fn));
        state.guard?.onTrip(fn);
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
    stopWaiting();
    await describeLoop;
    await Promise.all(informers.map((i) => i.stop()));
  }
}

interface WorkloadDiagnosis {
  /** How many things (pods, targets) are not where they must be. */
  pending: number;
  /** One line for progress output. */
  oneLine: string;
  /** Several lines for the final error. */
  detail: string;
  /** Container waiting/terminated reasons seen (CrashLoopBackOff, ImagePullBackOff…). */
  podReasons: Set<string>;
  /** AWS target-health reason codes seen on new or old targets (Target.ResponseCodeMismatch…). */
  targetReasons: Set<string>;
  /** Pods named in the diagnosis, for the hints (kubectl logs …). */
  failingPods: string[];
  /** New pods whose containers crash-loop (CrashLoopBackOff after several restarts): the release cannot start. */
  crashLooping: string[];
}

/** Restarts after which a crash-looping new pod fails the rollout at once rather than at the progress deadline. */
const CRASH_LOOP_RESTARTS = 3;

/** Why each new pod and each target is not done yet, grouped by reason so that five identical pods make one line. */
function diagnoseWorkload(newPods: KubeObject[], bindings: BindingInfo[], health: Map<string, TargetHealth[]>, expectedGates: string[]): WorkloadDiagnosis {
  const podGroups = new Map<string, string[]>();
  const podReasons = new Set<string>();
  const targetReasons = new Set<string>();
  const failingPods: string[] = [];
  const crashLooping: string[] = [];
  let pending = 0;
  const addPod = (why: string, p: KubeObject): void => {
    pending++;
    failingPods.push(p.metadata.name);
    podGroups.set(why, [...(podGroups.get(why) ?? []), `${p.metadata.name} (${podIp(p) ?? 'no IP yet'})`]);
  };
  const containersReady = new Set<string>();
  for (const p of newPods) {
    const status = (p.status ?? {}) as JsonObject;
    const statuses = (status.containerStatuses ?? []) as JsonObject[];
    const problems: string[] = [];
    if (statuses.length === 0) problems.push(`not started yet (phase ${String(status.phase ?? 'Pending')})`);
    for (const c of statuses) {
      const st = (c.state ?? {}) as JsonObject;
      const waiting = st.waiting as JsonObject | undefined;
      const terminated = st.terminated as JsonObject | undefined;
      const last = ((c.lastState ?? {}) as JsonObject).terminated as JsonObject | undefined;
      const restarts = Number(c.restartCount ?? 0);
      const history = `${restarts > 0 ? `, ${restarts} restart(s)` : ''}${last ? `, last exit code ${String(last.exitCode ?? '?')}${last.reason ? ` (${String(last.reason)})` : ''}` : ''}`;
      if (waiting) {
        const reason = String(waiting.reason ?? 'Waiting');
        podReasons.add(reason);
        if (reason === 'CrashLoopBackOff' && restarts >= CRASH_LOOP_RESTARTS && !crashLooping.includes(p.metadata.name)) crashLooping.push(p.metadata.name);
        // The kubelet's message often names the pod ("back-off 10s restarting failed container=… pod=…"): leave those out so identical pods group.
        const note = typeof waiting.message === 'string' && !waiting.message.includes(p.metadata.name) ? `: ${waiting.message}` : '';
        problems.push(`container ${String(c.name)} ${reason}${history}${note}`);
      } else if (terminated) {
        podReasons.add(String(terminated.reason ?? 'Terminated'));
        problems.push(`container ${String(c.name)} terminated (${String(terminated.reason ?? '?')}, exit code ${String(terminated.exitCode ?? '?')})${history}`);
      } else if (c.ready !== true) {
        podReasons.add('ReadinessProbeFailing');
        problems.push(`container ${String(c.name)} running but not ready (readinessProbe not passing yet)${history}`);
      }
    }
    if (problems.length > 0) addPod(problems.join('; '), p);
    else containersReady.add(p.metadata.name);
  }
  const targetLines: string[] = [];
  for (const b of bindings) {
    const targets = health.get(b.arn);
    if (!targets) {
      if (newPods.length > 0) {
        pending++;
        targetLines.push(`  target group ${b.name}: first DescribeTargetHealth pending`);
      }
      continue;
    }
    const groups = new Map<string, string[]>();
    const add = (key: string, what: string): void => {
      pending++;
      groups.set(key, [...(groups.get(key) ?? []), what]);
    };
    for (const p of newPods) {
      const ip = podIp(p);
      const t = targets.find((x) => x.id === ip);
      if (!t) {
        // The controller registers a pod only once its containers are ready; the pod line above says why not.
        if (containersReady.has(p.metadata.name)) add('not registered yet (the controller registers ready endpoints)', `${p.metadata.name} (${ip ?? 'no IP yet'})`);
        continue;
      }
      if (t.state === 'healthy') continue;
      if (t.reason) targetReasons.add(t.reason);
      add(`${t.state}${t.reason ? ` (${t.reason}${t.description ? `: ${t.description}` : ''})` : ''}`, `${t.id}:${t.port}`);
    }
    const draining = targets.filter((t) => t.state === 'draining');
    if (draining.length > 0) for (const t of draining) add('draining (old targets; the deregistration delay has not passed)', `${t.id}:${t.port}`);
    for (const [why, list] of groups) targetLines.push(`  target group ${b.name}: ${list.length} target(s) ${why}: ${list.slice(0, 8).join(', ')}${list.length > 8 ? `, +${list.length - 8} more` : ''}`);
  }
  // Pods whose containers are ready and whose targets are healthy may still wait for the gate condition to flip.
  for (const p of newPods) {
    if (!containersReady.has(p.metadata.name)) continue;
    const carried = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
    const notTrue = expectedGates.filter((g) => carried.includes(g) && conditionStatus(p, g) !== 'True');
    if (notTrue.length > 0 && targetLines.length === 0) addPod(`readiness gate ${notTrue.map((g) => g.slice(GATE_PREFIX.length)).join(', ')} not True yet`, p);
  }
  const podLines = [...podGroups].map(([why, list]) => `  ${list.length} new pod(s) not ready — ${why}: ${list.slice(0, 6).join(', ')}${list.length > 6 ? `, +${list.length - 6} more` : ''}`);
  const detail = [...podLines, ...targetLines].join('\n');
  return { pending, oneLine: detail.split('\n').map((l) => l.trim()).filter(Boolean).join('; '), detail, podReasons, targetReasons, failingPods, crashLooping };
}

/** What to do, for what the diagnosis saw. */
function workloadHints(diag: WorkloadDiagnosis, w: WorkloadWatch, pre: Preflight, ns: string): string {
  const out: string[] = [];
  const tgModels = pre.model.targetGroups.filter((tg) => w.bindings.some((b) => b.route.service.namespace === tg.service.namespace && b.route.service.name === tg.service.name));
  const hc = tgModels[0]?.healthCheck;
  if (diag.targetReasons.has('Target.ResponseCodeMismatch')) {
    out.push(
      `Target.ResponseCodeMismatch: the ALB health check${hc ? ` (path ${hc.path}, success codes ${hc.successCodes})` : ''} gets a status code its matcher does not accept, although the readinessProbe may pass. ` +
        'Fix: point alb.ingress.kubernetes.io/healthcheck-path at a path the app answers with a success code, or set alb.ingress.kubernetes.io/success-codes.',
    );
  }
  if (diag.targetReasons.has('Target.Timeout') || diag.targetReasons.has('Target.FailedHealthChecks')) {
    out.push('Target.Timeout/FailedHealthChecks: the ALB cannot reach the pod on the health-check port. Fix: check the pod security groups and the alb.ingress.kubernetes.io/healthcheck-port annotation.');
  }
  if (diag.targetReasons.has('Target.NotInUse') || diag.targetReasons.has('Target.NotRegistered')) {
    out.push('Target.NotInUse: the target group is not attached to a listener rule of the ALB, so targets never turn healthy (LBC issue #3753). Fix: check the Ingress rules and the controller events.');
  }
  const crash = ['CrashLoopBackOff', 'Error', 'OOMKilled', 'RunContainerError', 'CreateContainerError'].some((r) => diag.podReasons.has(r));
  if (crash) out.push(`The new pods crash: read why with \`kubectl logs -n ${ns} ${diag.failingPods[0] ?? '<pod>'} --previous\`; fix the image or its configuration.`);
  if (diag.podReasons.has('ImagePullBackOff') || diag.podReasons.has('ErrImagePull')) out.push('The image cannot be pulled: check the image name and tag and the registry credentials (imagePullSecrets).');
  if (diag.podReasons.has('ReadinessProbeFailing')) out.push('A readinessProbe does not pass: check its path/port against the app (kubectl describe pod shows the probe failures).');
  out.push(
    `Inspect: kubectl describe pods -n ${ns} -l ${w.selector}` +
      (w.bindings[0]?.arn ? `; aws elbv2 describe-target-health --target-group-arn ${w.bindings[0].arn}` : '') +
      `. The old pods keep serving; to go back: kubectl rollout undo deployment/${w.name} -n ${ns}.`,
  );
  return out.join('\n');
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
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

/** After the rollout: AWS holds the deregistration delay the tuner planned. */
async function verifyAttributes(pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  for (const b of state.bindings) {
    const tg = pre.model.targetGroups.find((t) => t.service.namespace === b.route.service.namespace && t.service.name === b.route.service.name && String(t.port) === String(b.route.port));
    const expected = tg?.deregistrationDelaySeconds;
    if (expected === undefined || !b.arn) continue;
    let attrs: Record<string, string>;
    try {
      // Bounded like every wait: a throttling storm must not keep the run past its deadline.
      attrs = await deps.elbv2.attributes(b.arn, AbortSignal.timeout(Math.min(60, options.timeouts.rolloutSeconds) * 1000));
    } catch (err) {
      if (err instanceof UnreachableError) throw err;
      throw new DeployError(
        `expected to read the attributes of target group ${b.name} (${b.arn}) to verify deregistration_delay.timeout_seconds=${expected}, but DescribeTargetGroupAttributes failed: ${(err as Error).message}. ` +
          'The rollout itself completed. Fix: check the AWS API limits/permissions (elasticloadbalancing:DescribeTargetGroupAttributes), then re-run to verify.',
        'workloads',
      );
    }
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

export interface RollbackRunOptions {
  namespace: string;
  deployment: string;
  toRevision?: number;
  rolloutTimeoutSeconds: number;
  readinessGates: ReadinessGateMode;
  timeScale: number;
}

/** Objects read from the cluster, shaped like loaded manifests so that the model (routes, target groups) applies. */
function liveObjects(objects: KubeObject[]): LoadedObject[] {
  return objects.map((object) => {
    const source = { file: `cluster:${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`, line: 1 };
    return {
      object,
      ref: { apiVersion: object.apiVersion, kind: object.kind, namespace: object.metadata.namespace ?? '', name: object.metadata.name },
      source,
      locate: () => source,
    };
  });
}

/**
 * `alb-rollout rollback`: put a Deployment back to its previous (or a named) revision, the way `kubectl rollout
 * undo` does, and wait with the same rules as a deploy (gates, healthy targets, drained old targets).
 */
export async function runRollback(options: RollbackRunOptions, deps: DeployDeps): Promise<DeployResult> {
  const tl = new Timeline(deps.now);
  const state = newRunState(true);
  const { namespace, deployment } = options;
  const key = `${namespace}/${deployment}`;
  const rollbacks: RollbackResult[] = [];
  let error: string | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  let rolledBack = false;
  try {
    tl.startPhase('rollback');
    const current = await deps.kube.get('apps/v1', 'Deployment', namespace, deployment);
    if (!current) throw new DeployError(`Deployment ${key} does not exist. Fix: check the name and namespace (kubectl get deployments -n ${namespace}).`, 'rollback', ExitCode.invalidInput);
    const [services, ingresses, tgbs] = await Promise.all([
      deps.kube.list('v1', 'Service', namespace),
      deps.kube.list('networking.k8s.io/v1', 'Ingress', namespace),
      deps.kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', namespace).catch(() => ({ items: [] as KubeObject[], resourceVersion: '' })),
    ]);
    const live = liveObjects([{ ...current, apiVersion: 'apps/v1', kind: 'Deployment' }, ...services.items, ...ingresses.items]);
    const set: ManifestSet = { objects: live, files: [] };
    const model = buildModel(set);
    const pre = { model } as Pick<Preflight, 'model'> as Preflight;
    const d = model.deployments[0];
    const serviceNames = new Set((d?.services ?? []).map((s) => s.name));
    for (const b of tgbs.items) {
      const spec = (b.spec ?? {}) as JsonObject;
      const ref = (spec.serviceRef ?? {}) as JsonObject;
      if (!serviceNames.has(String(ref.name))) continue;
      const tg = model.targetGroups.find((t) => t.service.name === ref.name);
      state.bindings.push({
        route: {
          ingress: { namespace, name: tg?.ingress.name ?? '' },
          service: { namespace, name: String(ref.name) },
          port: (ref.port as string | number | undefined) ?? tg?.port ?? '',
          targetType: String(spec.targetType ?? ''),
        },
        name: b.metadata.name,
        arn: String(spec.targetGroupARN ?? ''),
        targetType: String(spec.targetType ?? ''),
      });
    }
    const spec = (current.spec ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await deps.kube.list('v1', 'Pod', namespace, { labelSelector: selector })).items;
    const loaded = live[0] as LoadedObject;
    const runOptions: DeployOptions = {
      dryRun: false,
      forceConflicts: false,
      readinessGates: options.readinessGates,
      timeouts: { routingSeconds: 0, rolloutSeconds: options.rolloutTimeoutSeconds },
      timeScale: options.timeScale,
    };
    const result = await rollbackAndWait(deps.kube, namespace, deployment, { ...(options.toRevision !== undefined ? { toRevision: options.toRevision } : {}), now: deps.now }, async (target) => {
      state.previous.set(key, target.fromRevision);
      tl.add('rollback', `Deployment ${key}: revision ${target.fromRevision} → template of revision ${target.toRevision} written`, { from: target.fromRevision, to: target.toRevision });
      deps.log.info(`rolling back Deployment ${key} to the template of revision ${target.toRevision}; waiting for gates, healthy targets and drained old targets`);
      await waitForWorkload(
        {
          loaded,
          namespace,
          name: deployment,
          selector: target.selector,
          bindings: state.bindings,
          oldPodIps: target.oldPodIps,
          oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
          previousRevision: target.fromRevision,
        },
        pre,
        runOptions,
        deps,
        tl,
        state,
      );
    });
    rollbacks.push(result);
    tl.add('rollback', result.message, { outcome: result.outcome });
    deps.log.info(result.message);
    rolledBack = result.outcome === 'rolled-back';
    if (result.outcome === 'nothing-to-roll-back') throw new DeployError(result.message, 'rollback');
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    exitCode = exitCodeOf(err);
    tl.add('error', error, { exitCode });
    if (!(err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError || err instanceof UnreachableError || err instanceof InputError)) throw err;
  } finally {
    tl.endOpenPhase();
  }
  return runResult(key, error ? 'failed' : rolledBack ? 'rolled-back' : 'succeeded', tl, state, deps, {
    ...(error ? { error, failedPhase: 'rollback' } : {}),
    ...(rollbacks.length > 0 ? { rollbacks } : {}),
    exitCode,
  });
}
