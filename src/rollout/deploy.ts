import { ExitCode, exitCodeOf, UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { revisionOf } from '../kube/rollout-status.js';
import type { JsonObject, KubeObject, LoadedObject } from '../manifests/types.js';
import type { Preflight } from '../plan/index.js';
import { objectsOfPhase, type PhaseName, type PlanRoute } from '../plan/phases.js';
import type { Logger } from '../report/log.js';
import { Timeline } from '../report/timeline.js';
import { awsClock } from '../aws/clock.js';
import { describeDecision } from '../guard/index.js';
import { GuardTripped, startGuard, summarizeMeasurements } from './guarding.js';
import { rollbackAndWait, type RollbackResult } from './rollback.js';
import {
  DeployError,
  GATE_LABEL,
  GATE_PREFIX,
  newRunState,
  runResult,
  type BindingInfo,
  type DeployDeps,
  type DeployOptions,
  type DeployResult,
  type RunState,
  type WorkloadWatch,
} from './types.js';
import { waitUntil, WaitFailed, type CheckResult } from './wait.js';
import { podIp, unsyncedMessage, waitForWorkload } from './workload.js';

export * from './types.js';
export { runRollback, type RollbackRunOptions } from './rollback-run.js';

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
  const gateNamespaces = new Set(options.readinessGates === 'off' ? [] : pre.plan.gateNamespaces);
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
  // On an update the ALB already serves the previous version: the guard watches from the first new pod on. On a
  // first install nothing served before, and the ALB answers 503 until the first targets are healthy — that is not
  // the release failing, so the guard starts once the rollout is complete (it then watches the bake window).
  const firstInstall = watches.every((w) => w.previousRevision === undefined);
  if (!firstInstall) await startRunGuard(options, deps, tl, state);
  for (const w of watches) await waitForWorkload(w, pre, options, deps, tl, state);
  if (firstInstall) await startRunGuard(options, deps, tl, state);
}

async function startRunGuard(options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  if (!options.guard?.enabled || state.bindings.length === 0) return;
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
