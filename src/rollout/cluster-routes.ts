import { KubeApiError } from '../kube/client.js';
import type { KubeObject } from '../manifests/types.js';
import { routesWithCluster } from '../plan/cluster-routes.js';
import { routeVia, type PlanRoute } from '../plan/phases.js';
import type { PlanStep } from '../plan/steps.js';
import type { RunContext } from './context.js';

/**
 * Reads what the set may not hold — the Services, Ingresses and user TargetGroupBindings live in the workloads'
 * namespaces (an Ingress routes only to Services of its own namespace) — and adds every route they make. Reads
 * are namespace-scoped; IngressClasses (cluster-scoped) are read when allowed, else the class name decides.
 */
export async function findClusterRoutes(step: Extract<PlanStep, { type: 'cluster-routes' }>, ctx: RunContext): Promise<void> {
  const { pre, deps, options, rec } = ctx;
  rec.enter(step.phase);
  const namespaces = [...new Set(step.workloads.map((w) => w.namespace))];
  const live = { services: [] as KubeObject[], ingresses: [] as KubeObject[], ingressClasses: [] as KubeObject[], bindings: [] as KubeObject[] };
  for (const ns of namespaces) {
    // A namespace-scoped deployer may not read Namespaces (403): then the lists below say whether it exists.
    const exists = await deps.kube.get('v1', 'Namespace', '', ns).then((n) => n !== undefined, (err: unknown) => (err instanceof KubeApiError && err.code === 403 ? true : Promise.reject(err)));
    if (!exists) continue;
    const [services, ingresses, bindings] = await Promise.all([
      deps.kube.list('v1', 'Service', ns),
      deps.kube.list('networking.k8s.io/v1', 'Ingress', ns),
      // No TargetGroupBinding CRD: no AWS Load Balancer Controller, so no bindings.
      deps.kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', ns).catch(orNothingOn([404])),
    ]);
    live.services.push(...services.items);
    live.ingresses.push(...ingresses.items);
    live.bindings.push(...(bindings?.items ?? []));
  }
  if (live.ingresses.length > 0) {
    const classes = await deps.kube.list('networking.k8s.io/v1', 'IngressClass', '').catch(orNothingOn([403]));
    if (classes) live.ingressClasses.push(...classes.items);
    else deps.log.info('IngressClasses are not readable with these credentials (cluster-scoped): an Ingress counts as an ALB Ingress by its class name alb or its alb.ingress.kubernetes.io annotations');
  }
  const found = routesWithCluster(pre.set, step.workloads, live);
  for (const w of step.workloads) {
    const key = `${w.namespace}/${w.name}`;
    const routes = found.get(key) ?? [];
    ctx.routes.set(key, routes);
    const fromCluster = routes.filter((r) => r.from === 'cluster');
    if (fromCluster.length > 0) {
      rec.note('load-balancer', `${w.kind} ${key}: ${fromCluster.length} route(s) found in the cluster: ${fromCluster.map(describe).join('; ')}`);
    } else if (routes.length === 0 && argoAlb(ctx, key)) {
      rec.note('load-balancer', `${w.kind} ${key}: its canary and stable Services get their target groups from Argo's ALB traffic routing (the Ingress's action annotation); the Rollout's wait finds their TargetGroupBindings`);
    } else if (routes.length === 0) {
      rec.note(
        'warning',
        `${w.kind} ${key}: no load balancer routes to it (no Service selecting its pods is behind an ALB Ingress or a TargetGroupBinding, in the set or the cluster): only its rollout is checked; no readiness-gate, target-health or drain check and no 5xx guard`,
      );
    }
    if (options.readinessGates !== 'off') for (const r of fromCluster) if (r.targetType === 'ip') ctx.clusterGateNamespaces.add(r.service.namespace);
  }
  for (const ns of pre.plan.gateNamespaces) ctx.clusterGateNamespaces.delete(ns);
}

/** A Rollout with ALB traffic routing: its routes are Argo's to write, not found at preflight. */
function argoAlb(ctx: RunContext, key: string): boolean {
  return ctx.pre.plan.steps.some((s) => s.type === 'argo-rollout' && `${s.workload.namespace}/${s.workload.name}` === key && s.argo.alb !== undefined);
}

function describe(r: PlanRoute): string {
  return `${routeVia(r)} → Service ${r.service.name}:${r.port} (${r.targetType})`;
}

function orNothingOn(codes: number[]): (err: unknown) => undefined {
  return (err) => {
    if (err instanceof KubeApiError && codes.includes(err.code)) return undefined;
    throw err;
  };
}
