import type { AppModel } from '../manifests/model.js';
import type { JsonObject, ManifestSet } from '../manifests/types.js';
import type { TimerPlan, TuneResult, TuningChange } from '../tune/index.js';
import { argoServices, canaryStepString } from './checks/argo-rollout.js';
import { updateStrategyOf } from './checks/rollout-status.js';
import { estimateRollouts, type RolloutEstimate } from './estimate.js';
import { namespacesThatMustExist, routeKey, type PlanPhase, type PlanRoute } from './phases.js';
import { buildSteps, phasesOf, type PlanStep } from './steps.js';

export interface Plan {
  /** What `deploy` executes, in order (rollout/runner.ts). */
  steps: PlanStep[];
  /** The steps grouped by phase, for people and the plan's JSON. */
  phases: PlanPhase[];
  changes: TuningChange[];
  estimates: RolloutEstimate[];
  mustExist: Array<{ name: string; referencedBy: string[] }>;
  timers: TimerPlan[];
  /** Namespaces whose workloads sit behind ip target groups: the ones that need the readiness-gate label. */
  gateNamespaces: string[];
}

/** The plan of a (tuned) manifest set: the steps deploy executes, grouped by phase, with estimates and tuning. */
export function buildPlan(set: ManifestSet, model: AppModel, tune: TuneResult, options: { readinessGates: 'inject' | 'require' | 'off' }): Plan {
  const estimates = estimateRollouts(model, {});
  const routes = planRoutes(model);
  const gated = gateNamespaces(model, routes);
  const routesByService = new Map<string, PlanRoute[]>();
  for (const r of routes) {
    const k = `${r.service.namespace}/${r.service.name}`;
    routesByService.set(k, [...(routesByService.get(k) ?? []), r]);
  }
  const deregistrationDelays = new Map<string, number>();
  for (const tg of model.targetGroups) {
    const k = routeKey({ service: tg.service, port: tg.port, ingress: tg.ingress });
    if (tg.deregistrationDelaySeconds !== undefined && !deregistrationDelays.has(k)) deregistrationDelays.set(k, tg.deregistrationDelaySeconds);
  }
  const steps = buildSteps({
    objects: set.objects,
    routes,
    gateNamespaces: gated,
    readinessGates: options.readinessGates,
    workloads: model.deployments.map((d) => ({
      ref: { apiVersion: d.loaded.ref.apiVersion, kind: d.loaded.ref.kind, namespace: d.namespace, name: d.name },
      routes: d.services.flatMap((s) => routesByService.get(`${s.namespace}/${s.name}`) ?? []),
      ...(d.kind === 'StatefulSet' || d.kind === 'DaemonSet' ? { updateStrategy: updateStrategyOf(d.loaded.object) } : {}),
      ...(d.kind === 'Rollout' ? { argo: { services: argoServices(d.loaded.object), steps: rolloutSteps(d.loaded.object) } } : {}),
    })),
    deregistrationDelays,
  });
  return { steps, phases: phasesOf(steps), changes: tune.changes, estimates, mustExist: namespacesThatMustExist(set.objects), timers: tune.timers, gateNamespaces: gated };
}

/** Routes in the set: one per Ingress target group, one per TargetGroupBinding the user wrote. */
export function planRoutes(model: AppModel, from: PlanRoute['from'] = 'set'): PlanRoute[] {
  const out: PlanRoute[] = model.targetGroups.map((tg) => {
    const group = tg.ingress.annotations['alb.ingress.kubernetes.io/group.name'];
    return {
    ingress: { namespace: tg.ingress.namespace, name: tg.ingress.name, ...(group ? { group } : {}) },
    service: { namespace: tg.service.namespace, name: tg.service.name },
    port: tg.port,
    targetType: tg.targetType,
    from,
  };
  });
  // The controller's Service path: an NLB with one target group (and one TargetGroupBinding) per Service port.
  for (const svc of model.services) {
    const a = svc.annotations;
    const external = a['service.beta.kubernetes.io/aws-load-balancer-type'] === 'external' || (svc.loaded.object.spec as { loadBalancerClass?: string } | undefined)?.loadBalancerClass === 'service.k8s.aws/nlb';
    if (svc.type !== 'LoadBalancer' || !external) continue;
    const targetType = a['service.beta.kubernetes.io/aws-load-balancer-nlb-target-type'] ?? 'instance';
    for (const p of svc.ports) out.push({ nlb: true, service: { namespace: svc.namespace, name: svc.name }, port: p.port, targetType, from });
  }
  for (const b of model.bindings) {
    if (!b.service) continue;
    const port = b.port ?? b.service.ports[0]?.port;
    if (port === undefined) continue;
    out.push({ binding: { namespace: b.namespace, name: b.name }, service: { namespace: b.namespace, name: b.serviceName }, port, targetType: b.targetType ?? 'ip', from });
  }
  return out;
}

function rolloutSteps(o: JsonObject): string[] {
  const steps = (((o.spec as JsonObject | undefined)?.strategy as JsonObject | undefined)?.canary as JsonObject | undefined)?.steps;
  return Array.isArray(steps) ? steps.map(canaryStepString) : [];
}

function gateNamespaces(model: AppModel, routes: PlanRoute[]): string[] {
  const ns = new Set(routes.filter((r) => r.targetType === 'ip').map((r) => r.service.namespace));
  // An Argo canary with ALB traffic routing: its Ingress (ip targets) gets the canary and stable target groups from
  // Argo's action annotation, which the set does not hold.
  for (const d of model.deployments) {
    if (d.kind !== 'Rollout') continue;
    const alb = argoServices(d.loaded.object).alb;
    const ip = model.ingresses.some((i) => i.namespace === d.namespace && alb?.ingresses.includes(i.name) && i.annotations['alb.ingress.kubernetes.io/target-type'] === 'ip');
    if (ip) ns.add(d.namespace);
  }
  return [...ns].filter((n) => model.deployments.some((d) => d.namespace === n)).sort();
}
