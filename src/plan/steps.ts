import { crdKindOf, crdKinds } from '../manifests/scope.js';
import type { ArgoServices } from './checks/argo-rollout.js';
import type { LoadedObject } from '../manifests/types.js';
import { objectsOfPhase, PHASE_NAMES, routeKey, toPlanObject, type PhaseName, type PlanObject, type PlanPhase, type PlanRoute, type PlanWait, type WaitKind } from './phases.js';

/**
 * The plan as the program: the typed steps `deploy` executes, in order. Each step says what it does and (for
 * waits) what it checks; the runner (rollout/runner.ts) executes exactly these, and `plan` prints exactly these.
 * Pure: built from the manifests, the model and the options.
 */

export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

/** The checks of a workload wait, all evaluated on one snapshot (plan/checks/workload.ts). */
export type WorkloadCheck = 'rollout-complete' | 'readiness-gates' | 'targets-healthy' | 'targets-drained';

export type PlanStep =
  /** Lint errors stop the run; then a server-side dry-run of every object whose namespace (and kind) exists. */
  | { type: 'preflight'; phase: 'preflight'; objects: number }
  /** Routes the set does not hold: live Services selecting the workloads, Ingresses and user TargetGroupBindings routing to them. */
  | { type: 'cluster-routes'; phase: 'preflight'; workloads: WorkloadRef[] }
  /** Server-side apply of these objects, in this order. `index` points into the manifest set. */
  | { type: 'apply'; phase: PhaseName; objects: PlanObject[]; index: number[]; labelNamespaces: string[] }
  | { type: 'crd-established'; phase: PhaseName; crds: string[] }
  /** Namespaces that must carry the readiness-gate label: labelled (inject) or required (require). */
  | { type: 'namespace-labels'; phase: PhaseName; namespaces: string[]; mode: 'inject' | 'require' }
  /** The dry-run of the objects that could not be validated at preflight (their namespace did not exist yet). */
  | { type: 'deferred-dry-run'; phase: PhaseName; namespaces: string[]; /** Objects of kinds the set's CRDs define. */ customResources: number }
  /** Every Ingress has an ALB hostname and every route its TargetGroupBinding. */
  | { type: 'routing'; phase: 'routing'; routes: PlanRoute[]; ingresses: Array<{ namespace: string; name: string }> }
  /** Record each workload's current revision and pods (what a rollback returns to), then apply the workloads. */
  | { type: 'apply-workloads'; phase: 'workloads'; objects: PlanObject[]; index: number[]; workloads: WorkloadRef[]; /** Argo Rollouts: their pods are recorded (to tell the new ones), nothing to roll back to. */ rollouts: WorkloadRef[] }
  /** The 5xx guard: from the first new pod on an update; on a first install from rollout complete. */
  | { type: 'guard'; phase: 'workloads' }
  | { type: 'workload'; phase: 'workloads'; workload: WorkloadRef; routes: PlanRoute[]; checks: WorkloadCheck[] }
  /**
   * An Argo Rollout: its own status (phase, canary step, pauses) with the gate and target rules for its new pods in
   * the target groups of its Services — those the routes name and, with ALB traffic routing, the canary and stable
   * Services (their bindings appear once Argo writes the Ingress's action annotation). Argo owns the rollout.
   */
  | { type: 'argo-rollout'; phase: 'workloads'; workload: WorkloadRef; routes: PlanRoute[]; argo: ArgoServices; canarySteps: string[]; checks: WorkloadCheck[] }
  /** Applied, but not waited on: named so that nobody believes a check ran. */
  | { type: 'not-waited'; phase: 'workloads'; workload: WorkloadRef; reason: string }
  /** The tuned deregistration delay is what AWS holds, per target group. */
  | { type: 'attributes'; phase: 'workloads'; targetGroups: Array<{ route: PlanRoute; deregistrationDelaySeconds: number }> }
  | { type: 'bake'; phase: 'bake' };

export type StepType = PlanStep['type'];

export interface StepInputs {
  objects: LoadedObject[];
  routes: PlanRoute[];
  gateNamespaces: string[];
  readinessGates: 'inject' | 'require' | 'off';
  /** Workloads with the target groups that route to them (and, for StatefulSets and DaemonSets, their updateStrategy.type). */
  workloads: Array<{ ref: WorkloadRef; routes: PlanRoute[]; updateStrategy?: string; /** A Rollout's Services and canary steps. */ argo?: { services: ArgoServices; steps: string[] } }>;
  /** Per route (routeKey): the deregistration delay the manifests set. */
  deregistrationDelays: Map<string, number>;
}

/** Kinds whose rollout the runner waits on, and why the others are not. */
export function notWaitedReason(kind: string, updateStrategy = 'RollingUpdate'): string | undefined {
  if (kind === 'Deployment') return undefined;
  if (kind === 'StatefulSet' || kind === 'DaemonSet') {
    if (updateStrategy === 'RollingUpdate') return undefined;
    return `its updateStrategy is ${updateStrategy}: the controller replaces a pod only when someone deletes it, so there is no rollout to wait for; alb-rollout applies it and runs no rollout, readiness-gate, target-health or drain check and no guard for it (kubectl rollout status refuses it too)`;
  }
  if (kind === 'Rollout') return undefined;
  return `alb-rollout applies it and does not wait for it (no rollout rule for kind ${kind})`;
}

/** What "rollout complete" means per kind (kubectl's rules, plan/checks/rollout-status.ts). */
function rolloutRule(kind: string): string {
  if (kind === 'StatefulSet') return 'every replica ready, and the pods from the partition up at the update revision (observedGeneration current)';
  if (kind === 'DaemonSet') return 'on every node it schedules to, the pod updated and available (observedGeneration current)';
  return 'updated = ready = available = desired replicas, no old pods left, observedGeneration current';
}

export function buildSteps(inputs: StepInputs): PlanStep[] {
  const steps: PlanStep[] = [{ type: 'preflight', phase: 'preflight', objects: inputs.objects.length }];
  const waited = inputs.workloads.filter((w) => notWaitedReason(w.ref.kind, w.updateStrategy) === undefined);
  if (waited.length > 0) steps.push({ type: 'cluster-routes', phase: 'preflight', workloads: waited.map((w) => w.ref) });
  const indexOf = new Map(inputs.objects.map((o, i) => [o, i]));
  const applyOf = (phase: PhaseName, labelNamespaces: string[] = []): PlanStep | undefined => {
    const objects = objectsOfPhase(inputs.objects, phase);
    if (objects.length === 0) return undefined;
    return { type: 'apply', phase, objects: objects.map(toPlanObject), index: objects.map((o) => indexOf.get(o) as number), labelNamespaces };
  };
  const gated = inputs.readinessGates === 'off' ? [] : inputs.gateNamespaces;
  const push = (s: PlanStep | undefined): void => {
    if (s) steps.push(s);
  };

  const nsApply = applyOf('namespaces', inputs.readinessGates === 'inject' ? gated : []);
  push(nsApply);
  const crds = objectsOfPhase(inputs.objects, 'namespaces').filter((o) => o.ref.kind === 'CustomResourceDefinition').map((o) => o.ref.name);
  if (crds.length > 0) push({ type: 'crd-established', phase: 'namespaces', crds });
  if (inputs.readinessGates !== 'off' && (gated.length > 0 || waited.length > 0)) push({ type: 'namespace-labels', phase: 'namespaces', namespaces: gated, mode: inputs.readinessGates });
  const created = inputs.objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name);
  const crd = crdKinds(inputs.objects);
  const customResources = inputs.objects.filter((o) => crd.has(crdKindOf(o))).length;
  if ((created.length > 0 && inputs.objects.some((o) => o.ref.namespace && created.includes(o.ref.namespace))) || customResources > 0) {
    push({ type: 'deferred-dry-run', phase: 'namespaces', namespaces: created, customResources });
  }
  push(applyOf('config'));
  push(applyOf('routing'));
  if (inputs.routes.length > 0 || waited.length > 0) {
    push({ type: 'routing', phase: 'routing', routes: uniqueBy(inputs.routes, routeKey), ingresses: uniqueBy(inputs.routes.flatMap((r) => (r.ingress ? [r.ingress] : [])), (i) => `${i.namespace}/${i.name}`) });
  }

  const workloadObjects = objectsOfPhase(inputs.objects, 'workloads');
  if (workloadObjects.length > 0) {
    push({
      type: 'apply-workloads',
      phase: 'workloads',
      objects: workloadObjects.map(toPlanObject),
      index: workloadObjects.map((o) => indexOf.get(o) as number),
      workloads: waited.filter((w) => w.ref.kind !== 'Rollout').map((w) => w.ref),
      rollouts: waited.filter((w) => w.ref.kind === 'Rollout').map((w) => w.ref),
    });
  }
  // The guard needs a load balancer: one in the set, or one deploy finds in the cluster. Argo judges its own Rollouts.
  const guarded = waited.some((w) => w.ref.kind !== 'Rollout');
  if (guarded) push({ type: 'guard', phase: 'workloads' });
  for (const w of inputs.workloads) {
    const reason = notWaitedReason(w.ref.kind, w.updateStrategy);
    if (reason) {
      push({ type: 'not-waited', phase: 'workloads', workload: w.ref, reason });
      continue;
    }
    const checks: WorkloadCheck[] = ['rollout-complete'];
    if (w.argo) {
      if (inputs.readinessGates !== 'off') checks.push('readiness-gates');
      checks.push('targets-healthy', 'targets-drained');
      push({ type: 'argo-rollout', phase: 'workloads', workload: w.ref, routes: w.routes, argo: w.argo.services, canarySteps: w.argo.steps, checks });
      continue;
    }
    if (w.routes.length > 0) {
      if (inputs.readinessGates !== 'off') checks.push('readiness-gates');
      checks.push('targets-healthy', 'targets-drained');
    }
    push({ type: 'workload', phase: 'workloads', workload: w.ref, routes: w.routes, checks });
  }
  for (const o of workloadObjects) {
    if (o.ref.kind === 'Deployment' || o.ref.kind === 'Rollout' || o.ref.kind === 'HorizontalPodAutoscaler') continue;
    if (inputs.workloads.some((w) => w.ref.kind === o.ref.kind && w.ref.namespace === o.ref.namespace && w.ref.name === o.ref.name)) continue;
    const reason = notWaitedReason(o.ref.kind) as string;
    push({ type: 'not-waited', phase: 'workloads', workload: { apiVersion: o.ref.apiVersion, kind: o.ref.kind, namespace: o.ref.namespace, name: o.ref.name }, reason });
  }
  const attributes = uniqueBy(inputs.routes, routeKey)
    .map((route) => ({ route, deregistrationDelaySeconds: inputs.deregistrationDelays.get(routeKey(route)) }))
    .filter((a): a is { route: PlanRoute; deregistrationDelaySeconds: number } => a.deregistrationDelaySeconds !== undefined);
  if (attributes.length > 0) push({ type: 'attributes', phase: 'workloads', targetGroups: attributes });
  if (guarded) push({ type: 'bake', phase: 'bake' });
  return steps;
}

function id(w: { kind: string; namespace: string; name: string }): string {
  return w.namespace ? `${w.kind} ${w.namespace}/${w.name}` : `${w.kind} ${w.name}`;
}

/** What a step waits for, as the plan prints it (empty for steps that only apply). */
export function describeStep(step: PlanStep): PlanWait[] {
  switch (step.type) {
    case 'preflight':
      return [{ kind: 'preflight', description: `lint errors stop the run; the API server dry-runs all ${step.objects} object(s) (server-side apply, nothing written)` }];
    case 'cluster-routes':
      return [
        {
          kind: 'cluster-routes',
          description: `find the routes to ${step.workloads.map(id).join(', ')} in the cluster too: live Services selecting their pods, every ALB Ingress routing to those Services, TargetGroupBindings you made for them; each target group found gets the same waits and checks as one in the set`,
        },
      ];
    case 'apply':
      return [];
    case 'crd-established':
      return step.crds.map((c) => ({ kind: 'crd-established', description: `CustomResourceDefinition ${c} is Established` }));
    case 'namespace-labels':
      return [
        ...step.namespaces.map((ns) => ({
          kind: 'namespace-label' as WaitKind,
          description: `namespace ${ns} carries elbv2.k8s.aws/pod-readiness-gate-inject=enabled${step.mode === 'inject' ? ' (added by deploy if missing)' : ''}`,
        })),
        {
          kind: 'namespace-label' as WaitKind,
          description: `${step.namespaces.length > 0 ? 'and every other' : 'every'} namespace whose workloads a route found in the cluster reaches (ip targets) carries the label${step.mode === 'inject' ? ' (added by deploy if missing)' : ''}`,
        },
      ];
    case 'deferred-dry-run':
      return [
        {
          kind: 'deferred-dry-run',
          description: `the API server dry-runs ${[step.namespaces.length > 0 ? `the objects in ${step.namespaces.join(', ')} now that the namespace(s) exist` : '', step.customResources > 0 ? `the ${step.customResources} custom resource(s) now that their CRDs are Established` : ''].filter(Boolean).join(' and ')}, before anything else is written`,
        },
      ];
    case 'routing':
      return [
        ...(step.routes.length === 0 ? [{ kind: 'load-balancer' as WaitKind, description: 'the routes found in the cluster (if any): each Ingress has an ALB hostname and each route its TargetGroupBinding' }] : []),
        ...step.ingresses.map((ing) => ({
          kind: 'load-balancer' as WaitKind,
          description: `Ingress ${ing.namespace}/${ing.name} has an ALB hostname in status.loadBalancer.ingress (no FailedBuildModel/FailedDeployModel events)`,
        })),
        ...step.routes.map((r) => ({
          kind: 'target-group-binding' as WaitKind,
          description: r.binding
            ? `TargetGroupBinding ${r.binding.namespace}/${r.binding.name} (yours) exists with a targetGroupARN for Service ${r.service.namespace}/${r.service.name} port ${r.port}`
            : r.nlb
              ? `the NLB of Service ${r.service.namespace}/${r.service.name} has the TargetGroupBinding for port ${r.port} with targetType ${r.targetType === 'ip' ? 'ip' : `ip (the Service says ${r.targetType}: gates cannot work; set aws-load-balancer-nlb-target-type: ip)`}`
              : `TargetGroupBinding with targetType ${r.targetType === 'ip' ? 'ip' : `ip (the route says ${r.targetType}: gates cannot work)`} exists for Service ${r.service.namespace}/${r.service.name} port ${r.port}`,
        })),
      ];
    case 'apply-workloads':
      return [
        ...(step.workloads.length > 0 ? [{ kind: 'record-revisions' as WaitKind, description: `before applying: record the current revision and pods of ${step.workloads.map(id).join(', ')} (what a rollback returns to)` }] : []),
        ...(step.rollouts.length > 0 ? [{ kind: 'record-revisions' as WaitKind, description: `before applying: record the pods of ${step.rollouts.map(id).join(', ')} (to tell its new pods; Argo keeps its own revisions)` }] : []),
      ];
    case 'argo-rollout':
      return describeArgoStep(step);
    case 'guard':
      return [{ kind: 'guard', description: 'when a load balancer routes to them (in the set or found in the cluster): the 5xx guard watches from the first new pod (an update) or from rollout complete (a first install) until the bake window ends; with none, no guard runs and the run says so' }];
    case 'workload': {
      const w = id(step.workload);
      const tgs = step.routes.map((r) => `${r.service.name}:${r.port}`).join(', ');
      const out: PlanWait[] = [];
      for (const c of step.checks) {
        if (c === 'rollout-complete') out.push({ kind: 'rollout-complete', description: `${w}: rollout complete (${rolloutRule(step.workload.kind)})` });
        if (c === 'readiness-gates') out.push({ kind: 'readiness-gates', description: `${w}: every new pod carries the target-health.elbv2.k8s.aws/<binding> gate(s) and they are True` });
        if (c === 'targets-healthy') out.push({ kind: 'targets-healthy', description: `${w}: in the target group(s) for ${tgs} every new pod IP:port is healthy and registered targets equal ready endpoints` });
        if (c === 'targets-drained') out.push({ kind: 'targets-drained', description: `${w}: no old pod IP:port is still draining in ${tgs}` });
      }
      if (step.routes.length === 0) {
        out.push({
          kind: 'no-load-balancer',
          description: `${w}: no load balancer routes to it in the set; each target group found in the cluster gets the gate, target-health and drain checks; with none, only the rollout is checked (no gate, target or 5xx guard)`,
        });
      }
      return out;
    }
    case 'not-waited':
      return [{ kind: 'not-waited', description: `${id(step.workload)}: ${step.reason}` }];
    case 'attributes':
      return step.targetGroups.map((t) => ({
        kind: 'deregistration-delay' as WaitKind,
        description: `the target group for Service ${t.route.service.namespace}/${t.route.service.name} port ${t.route.port} has deregistration_delay.timeout_seconds=${t.deregistrationDelaySeconds} on AWS`,
      }));
    case 'bake':
      return [{ kind: 'bake', description: 'when the guard runs: the bake window passes with the 5xx guard quiet' }];
  }
}

/** The Services whose target groups hold a Rollout's pods: those the routes name and Argo's ALB canary/stable Services. */
export function argoStepServices(step: Pick<Extract<PlanStep, { type: 'argo-rollout' }>, 'argo'>, routes: PlanRoute[]): string[] {
  const out = routes.map((r) => r.service.name);
  if (step.argo.alb) for (const s of [step.argo.newService, step.argo.stableService]) if (s) out.push(s);
  return [...new Set(out)];
}

function describeArgoStep(step: Extract<PlanStep, { type: 'argo-rollout' }>): PlanWait[] {
  const w = id(step.workload);
  const a = step.argo;
  const services = argoStepServices(step, step.routes);
  const how =
    a.strategy === 'Canary'
      ? `canary${step.canarySteps.length > 0 ? ` steps ${step.canarySteps.join(' → ')}` : ' (no steps)'}${a.alb ? `, ALB traffic routing on Ingress ${a.alb.ingresses.join(', ')} (canary ${a.newService ?? '?'}, stable ${a.stableService ?? '?'})` : ''}`
      : `blue-green (active ${a.stableService ?? '?'}${a.newService ? `, preview ${a.newService}` : ''})`;
  const tgs = services.length > 0 ? `the target group(s) of Service(s) ${services.join(', ')}${a.alb ? ' (the canary and stable ones once Argo has written the action annotation and the controller bound them)' : ''}` : 'the target groups of the routes found in the cluster (if any)';
  const out: PlanWait[] = [];
  for (const c of step.checks) {
    if (c === 'rollout-complete') {
      out.push({
        kind: 'argo-phase',
        description:
          `${w}: ${how}; waits on Argo's own status: Healthy once status.observedGeneration equals metadata.generation and every step is done (currentPodHash = stableRS); ` +
          `Degraded (aborted, a failed analysis, the progress deadline) fails the run with Argo's message; a pause only a person ends (pause: {}, blue-green awaiting promotion, an inconclusive analysis) ends deploy with result paused, naming the step and \`kubectl argo rollouts promote\` (--argo-pauses wait waits through it); timed pauses are waited through; progress shows the step, the weights and the pods`,
      });
    }
    if (c === 'readiness-gates') {
      out.push({
        kind: 'readiness-gates',
        description: `${w}: the target-health.elbv2.k8s.aws/<binding> gates its new pods carry are True (the controller injects a gate only into a pod its Service selects at creation, and Argo points the canary/stable Services at new pods after they exist, so a Rollout's pods may carry none: their target health below is what counts)`,
      });
    }
    if (c === 'targets-healthy') out.push({ kind: 'targets-healthy', description: `${w}: in ${tgs}, every pod of the new pod hash is healthy and registered targets equal ready endpoints (at a pause where deploy ends: the new pods healthy behind ${a.newService ?? 'the new Service'})` });
    if (c === 'targets-drained') out.push({ kind: 'targets-drained', description: `${w}: once Healthy, no old pod IP:port is still draining in ${services.join(', ') || 'those target groups'}` });
  }
  out.push({
    kind: 'argo-not-done',
    description:
      `${w}: Argo owns its rollout: alb-rollout never writes its template back (no rollback) and runs no 5xx guard or bake for it — its analysis step judges the canary (\`alb-rollout analyze --rollout ${step.workload.name}\`, examples/argo-rollouts); ` +
      'when deploy itself sees the release fail while Argo still progresses (new pods crash-looping, the rollout timeout) it aborts the Rollout as `kubectl argo rollouts abort` does (status.abort=true: Argo sends all traffic back to stable and scales the canary down) with --rollback auto, and only reports with --rollback off',
  });
  return out;
}

/** The steps grouped by phase (preflight, which applies nothing, is left out): the plan's `phases`. */
export function phasesOf(steps: PlanStep[]): PlanPhase[] {
  const out: PlanPhase[] = [];
  for (const step of steps) {
    if (step.phase === 'preflight') continue;
    let phase = out.find((p) => p.name === step.phase);
    if (!phase) {
      phase = { name: step.phase, objects: [], waitFor: [] };
      out.push(phase);
    }
    if ('objects' in step && Array.isArray(step.objects)) phase.objects.push(...step.objects);
    phase.waitFor.push(...describeStep(step));
  }
  return out.sort((a, b) => PHASE_NAMES.indexOf(a.name) - PHASE_NAMES.indexOf(b.name));
}

export function uniqueBy<T>(items: T[], keyOf: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = keyOf(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
