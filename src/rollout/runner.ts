import { UnreachableError } from '../errors.js';
import { awsClock } from '../aws/clock.js';
import { describeDecision } from '../guard/index.js';
import type { JsonObject, KubeObject, LoadedObject } from '../manifests/types.js';
import { checkDeregistrationDelay } from '../plan/checks/attributes.js';
import { revisionOf } from '../plan/checks/rollout-status.js';
import { newRevisionOf, podIp, type WaitedKind } from '../plan/checks/workload.js';
import { routeKey, type PlanRoute } from '../plan/phases.js';
import type { PlanStep } from '../plan/steps.js';
import { applyOne, applyStep, deferredDryRun, ensureGateLabels, runPreflight, waitForCrds } from './apply.js';
import type { Recorder, RunContext } from './context.js';
import { findClusterRoutes } from './cluster-routes.js';
import { checkForeignChanges, recordApplied } from './foreign.js';
import { GuardTripped, probePreflight, startGuard } from './guarding.js';
import { waitForRouting } from './routing.js';
import { DeployError, GATE_PREFIX, type BindingInfo, type WorkloadWatch } from './types.js';
import { waitForWorkload } from './workload.js';
import { waitForArgoRollout } from './argo.js';

/**
 * The one runner: executes the plan's steps in order over one run context. `plan` prints these same steps
 * (plan/steps.ts), so what it shows is what runs. A dry run stops after preflight.
 */
export async function runSteps(steps: PlanStep[], ctx: RunContext): Promise<void> {
  let guardDeferred = false;
  for (const [i, step] of steps.entries()) {
    if (ctx.options.dryRun && step.phase !== 'preflight') return;
    if (step.type === 'guard') guardDeferred = !(await guardStep(ctx));
    else await execute(step, ctx);
    // A first install: nothing served before, and the ALB answers 503 until the first targets are healthy — that is
    // not the release failing, so the guard starts once the rollouts are complete (it then watches the bake window).
    if (guardDeferred && step.type === 'workload' && steps[i + 1]?.type !== 'workload') {
      guardDeferred = false;
      await startRunGuard(ctx);
    }
  }
}

async function execute(step: PlanStep, ctx: RunContext): Promise<void> {
  switch (step.type) {
    case 'preflight':
      await runPreflight(ctx);
      if (ctx.options.dryRun) return;
      // Issue 8: someone else's change stops the run before anything is applied.
      return checkForeignChanges(ctx.pre, ctx.deps, ctx.rec.timeline);
    case 'cluster-routes':
      await findClusterRoutes(step, ctx);
      if (ctx.options.dryRun) return;
      // The probe is checked and baselined once every route is known: a set of only Deployments has its Ingresses in the cluster.
      return probePreflight(ctx.pre, ctx.options, ctx.deps, ctx.rec.timeline, ctx.state, 'before-apply', allRoutes(ctx));
    case 'apply':
      return ctx.deps.log.group(`Phase ${step.phase}`, () => applyStep(step, ctx));
    case 'crd-established':
      return waitForCrds(step, ctx);
    case 'namespace-labels':
      return ensureGateLabels(step, ctx);
    case 'deferred-dry-run':
      return deferredDryRun(step, ctx);
    case 'routing':
      await waitForRouting(step, ctx);
      // A first install: the probe is checked once the ALB exists, before the workloads.
      return probePreflight(ctx.pre, ctx.options, ctx.deps, ctx.rec.timeline, ctx.state, 'after-routing', allRoutes(ctx));
    case 'apply-workloads':
      return applyWorkloads(step, ctx);
    case 'guard':
      return; // runSteps decides when the guard starts
    case 'workload':
      return workloadStep(step, ctx);
    case 'argo-rollout':
      return waitForArgoRollout(step, ctx);
    case 'not-waited':
      ctx.rec.enter(step.phase);
      ctx.rec.note('warning', `${step.workload.kind} ${step.workload.namespace}/${step.workload.name}: ${step.reason}`);
      return;
    case 'attributes':
      return verifyAttributes(step, ctx);
    case 'bake':
      return bake(ctx);
  }
}

/** Record revisions and pods (what a rollback goes back to), then apply the workloads. */
async function applyWorkloads(step: Extract<PlanStep, { type: 'apply-workloads' }>, ctx: RunContext): Promise<void> {
  const { pre, deps, state, rec } = ctx;
  rec.enter(step.phase);
  const watches: WorkloadWatch[] = [];
  const waited = new Set(step.workloads.map((w) => `${w.kind}/${w.namespace}/${w.name}`));
  for (const i of step.index) {
    const o = pre.set.objects[i] as LoadedObject;
    if (!waited.has(`${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`)) continue;
    const spec = (o.object.spec ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const kind = waitedKind(o.ref.kind);
    const current = await deps.kube.get(o.ref.apiVersion, o.ref.kind, o.ref.namespace, o.ref.name);
    const previousRevision = current ? await currentRevision(kind, current, selector, ctx) : undefined;
    const pods = current ? (await deps.kube.list('v1', 'Pod', o.ref.namespace, { labelSelector: selector })).items : [];
    const keys = new Set((ctx.routes.get(`${o.ref.namespace}/${o.ref.name}`) ?? []).map(routeKey));
    const bindings = state.bindings.filter((b) => keys.has(routeKey(b.route)));
    watches.push({
      loaded: o,
      ...(kind !== 'Deployment' ? { kind } : {}),
      namespace: o.ref.namespace,
      name: o.ref.name,
      selector,
      bindings,
      oldPodIps: new Set(pods.map(podIp).filter((ip): ip is string => ip !== undefined)),
      oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
      ...(previousRevision !== undefined ? { previousRevision } : {}),
      ...(current ? { generationBefore: Number(current.metadata.generation ?? 0) } : {}),
    });
    if (previousRevision !== undefined) {
      state.previous.set(`${o.ref.namespace}/${o.ref.name}`, previousRevision);
      rec.observe('revision', `${o.ref.kind} ${o.ref.namespace}/${o.ref.name} is at revision ${previousRevision} before the rollout`);
      warnUnprotectedOldPods(o.object, pods, bindings, rec);
    }
  }
  state.watches = watches;
  // A Rollout's pods before the apply tell its new pods (Argo keeps its own revisions; nothing is rolled back).
  for (const r of step.rollouts) {
    const o = pre.set.objects.find((x) => x.ref.kind === r.kind && x.ref.namespace === r.namespace && x.ref.name === r.name);
    const matchLabels = ((((o?.object.spec ?? {}) as JsonObject).selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await deps.kube.list('v1', 'Pod', r.namespace, { labelSelector: selector })).items;
    const live = await deps.kube.get(r.apiVersion, r.kind, r.namespace, r.name);
    state.argo.set(`${r.namespace}/${r.name}`, {
      ...(live ? { before: { hash: String(((live.status ?? {}) as JsonObject).currentPodHash ?? ''), template: JSON.stringify(((live.spec ?? {}) as JsonObject).template ?? {}) } } : {}),
      selector,
      oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
      oldPodIps: new Set(pods.map(podIp).filter((ip): ip is string => ip !== undefined)),
    });
  }
  for (const i of step.index) {
    const o = pre.set.objects[i] as LoadedObject;
    const applied = await applyOne(o, o.object, ctx);
    if (waited.has(`${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`)) recordApplied(watches, o.ref.namespace, o.ref.name, applied, rec.timeline);
    const argo = o.ref.kind === 'Rollout' ? state.argo.get(`${o.ref.namespace}/${o.ref.name}`) : undefined;
    // Only a new template gives the Rollout a new pod hash: then Argo's status is this release's once it names another.
    if (argo?.before && argo.before.hash !== '' && JSON.stringify(((applied.spec ?? {}) as JsonObject).template ?? {}) !== argo.before.template) argo.staleHash = argo.before.hash;
  }
  state.workloadsApplied = true;
}

function waitedKind(kind: string): WaitedKind {
  return kind === 'StatefulSet' || kind === 'DaemonSet' ? kind : 'Deployment';
}

/** The revision a workload is at before the run: a Deployment's annotation, a StatefulSet's or DaemonSet's ControllerRevision number. */
async function currentRevision(kind: WaitedKind, current: KubeObject, selector: string, ctx: RunContext): Promise<number | undefined> {
  if (kind === 'Deployment') return revisionOf(current);
  const controllerRevisions = (await ctx.deps.kube.list('apps/v1', 'ControllerRevision', current.metadata.namespace ?? '', { labelSelector: selector })).items;
  return newRevisionOf(kind, current, { replicaSets: [], controllerRevisions }).revision;
}

/** On an update the ALB already serves the previous version: the guard watches from the first new pod. Returns whether it started. */
async function guardStep(ctx: RunContext): Promise<boolean> {
  const firstInstall = ctx.state.watches.every((w) => w.previousRevision === undefined);
  if (firstInstall) return false;
  await startRunGuard(ctx);
  return true;
}

async function startRunGuard(ctx: RunContext): Promise<void> {
  const { options, deps, state, rec } = ctx;
  if (!options.guard?.enabled || state.bindings.length === 0) return;
  state.guard = await startGuard(
    options.guard,
    {
      hostnames: [...new Set(state.hostnames.values())],
      targetGroupArns: [...new Set(state.bindings.map((b) => b.arn))],
      newTargets: () => state.newPodIps,
      ...(state.probeCheck ? { preflight: state.probeCheck } : {}),
      ingresses: [...state.hostnames.keys()],
    },
    {
      elbv2: deps.elbv2,
      kube: deps.kube,
      ...(deps.cloudwatch ? { cloudwatch: deps.cloudwatch } : {}),
      clock: deps.clock ?? awsClock(options.timeScale, deps.now()),
      log: deps.log,
      now: deps.now,
      ...(deps.probeUrlFor ? { probeUrlFor: deps.probeUrlFor } : {}),
    },
    rec.timeline,
  );
}

async function workloadStep(step: Extract<PlanStep, { type: 'workload' }>, ctx: RunContext): Promise<void> {
  ctx.rec.enter(step.phase);
  const w = ctx.state.watches.find((x) => x.namespace === step.workload.namespace && x.name === step.workload.name);
  if (!w) throw new DeployError(`internal: no watch for ${step.workload.kind} ${step.workload.namespace}/${step.workload.name}`, step.phase);
  await waitForWorkload(w, ctx);
}

/** The guard keeps watching for the bake window; a failure there rolls back like one during the rollout. */
async function bake(ctx: RunContext): Promise<void> {
  const { deps, state, rec } = ctx;
  const run = state.guard;
  if (!run) return;
  const tripped = run.tripped();
  if (tripped) throw new GuardTripped(tripped);
  rec.enter('bake');
  run.guard.startBake();
  deps.log.info(`baking for ${run.guard.policy.bakeSeconds}s with the guard watching`);
  const decision = await run.guard.done;
  if (decision.verdict === 'fail') throw new GuardTripped(decision);
  // inconclusive: not measured enough — the run's result is unverified (run-end.ts), nothing is rolled back.
  if (decision.verdict === 'pass') rec.note('guard', describeDecision(decision), { verdict: decision.verdict });
  else rec.warn(describeDecision(decision), { verdict: decision.verdict });
}

/** After the rollout: AWS holds the deregistration delay the tuner planned. */
async function verifyAttributes(step: Extract<PlanStep, { type: 'attributes' }>, ctx: RunContext): Promise<void> {
  const { options, deps, state, rec } = ctx;
  rec.enter(step.phase);
  for (const t of step.targetGroups) {
    const b = state.bindings.find((x) => routeKey(x.route) === routeKey(t.route));
    const expected = t.deregistrationDelaySeconds;
    if (!b?.arn) continue;
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
    const result = checkDeregistrationDelay(b, expected, attrs);
    if (!result.done) throw new DeployError(result.message, 'workloads');
    rec.observe('attribute-verified', result.message, { arn: b.arn, value: attrs['deregistration_delay.timeout_seconds'] ?? '' });
  }
}

/** Old pods only get what their own template had: say so before the rollout when the new template adds protection. */
function warnUnprotectedOldPods(next: KubeObject, oldPods: KubeObject[], bindings: BindingInfo[], rec: Recorder): void {
  const template = ((next.spec as JsonObject).template ?? {}) as JsonObject;
  const newContainers = (((template.spec as JsonObject | undefined)?.containers ?? []) as JsonObject[]);
  const newHasPreStop = newContainers.some((c) => (c.lifecycle as JsonObject | undefined)?.preStop !== undefined);
  const lacksPreStop = oldPods.filter((p) => !(((p.spec as JsonObject).containers ?? []) as JsonObject[]).some((c) => (c.lifecycle as JsonObject | undefined)?.preStop !== undefined));
  const gateNames = bindings.filter((b) => b.targetType === 'ip').map((b) => `${GATE_PREFIX}${b.name}`);
  const lacksGates = oldPods.filter((p) => gateNames.some((g) => !(((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).some((r) => r.conditionType === g)));
  if (newHasPreStop && lacksPreStop.length > 0) {
    const msg = `${lacksPreStop.length} running pod(s) of ${next.metadata.namespace}/${next.metadata.name} have no preStop hook: they get SIGTERM while the ALB may still route to them, so this one rollout can still serve a few 502/504s. Later rollouts are protected.`;
    rec.warn(msg);
  }
  if (lacksGates.length > 0) {
    const msg = `${lacksGates.length} running pod(s) of ${next.metadata.namespace}/${next.metadata.name} were created before the readiness gate existed; the new pods will carry it, so the rollout still waits for new targets to be healthy.`;
    rec.log.info(msg);
    rec.observe('warning', msg);
  }
}

function allRoutes(ctx: RunContext): PlanRoute[] {
  return [...ctx.routes.values()].flat();
}
