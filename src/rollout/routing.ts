import { Informer } from '../kube/informer.js';
import type { KubeObject } from '../manifests/types.js';
import { checkRouting, type RoutingView } from '../plan/checks/routing.js';
import { routeKey, type PlanRoute } from '../plan/phases.js';
import { uniqueBy, type PlanStep } from '../plan/steps.js';
import type { RunContext } from './context.js';
import { waitUntil, type CheckResult } from './wait.js';
import { unsyncedMessage } from './workload.js';

/** The routing wait: watches the routes' Ingresses, TargetGroupBindings and Ingress events; checks them (plan/checks/routing.ts). */
export async function waitForRouting(step: Extract<PlanStep, { type: 'routing' }>, ctx: RunContext): Promise<void> {
  const { pre, options, deps, state, rec } = ctx;
  rec.enter(step.phase);
  const routes = allRoutes(step, ctx);
  if (routes.length === 0) return;
  const ingressRefs = uniqueBy(routes.flatMap((r) => (r.ingress ? [r.ingress] : [])), (i) => `${i.namespace}/${i.name}`);
  const namespaces = [...new Set(routes.flatMap((r) => [...(r.ingress ? [r.ingress.namespace] : []), r.service.namespace]))];
  const ingresses = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: ns }));
  const bindings = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'TargetGroupBinding', namespace: ns }));
  const events = namespaces.map((ns) => new Informer(deps.kube, { apiVersion: 'v1', kind: 'Event', namespace: ns, fieldSelector: 'involvedObject.kind=Ingress' }));
  const all = [...ingresses, ...bindings, ...events];
  const services = new Map<string, KubeObject>(pre.set.objects.filter((o) => o.ref.kind === 'Service').map((o) => [`${o.ref.namespace}/${o.ref.name}`, o.object]));
  const startedAt = deps.now();
  let last: RoutingView | undefined;
  for (const i of all) i.start();
  try {
    const check = (): CheckResult => {
      const unsynced = unsyncedMessage(all);
      if (unsynced) return { done: false, message: unsynced };
      last = checkRouting(
        routes,
        { ingresses: ingresses.flatMap((i) => i.list()), bindings: bindings.flatMap((i) => i.list()), events: events.flatMap((i) => i.list()), services, startedAt },
        options.readinessGates,
      );
      for (const [ing, host] of last.hostnames) state.hostnames.set(ing, host);
      return last.result;
    };
    await waitUntil(check, {
      what: 'waiting for the ALB and TargetGroupBindings',
      deadlineMs: options.timeouts.routingSeconds * 1000,
      recheckMs: 2000,
      log: deps.log,
      now: deps.now,
      hint:
        'Fix: check that the AWS Load Balancer Controller runs and handles the IngressClass (kubectl get ingressclass; kubectl -n kube-system logs deployment/aws-load-balancer-controller), ' +
        `and read the Ingress events (kubectl describe ingress -n ${ingressRefs[0]?.namespace ?? ''} ${ingressRefs[0]?.name ?? ''}); raise --routing-timeout if the controller is only slow.`,
      subscribe: (fn) => {
        const offs = all.map((i) => i.onChange(fn));
        return () => offs.forEach((o) => o());
      },
    });
    for (const info of last?.bindings ?? []) {
      state.bindings.push(info);
      const r = info.route;
      rec.observe('target-group-binding', `TargetGroupBinding ${info.name} (${info.targetType}) → ${info.arn}`, { service: `${r.service.namespace}/${r.service.name}`, arn: info.arn });
    }
    for (const [ing, host] of state.hostnames) rec.observe('load-balancer', `Ingress ${ing} → ${host}`, { ingress: ing, hostname: host });
  } finally {
    await Promise.all(all.map((i) => i.stop()));
  }
}

/** The plan's routes and those found in the cluster, once each. */
export function allRoutes(step: Extract<PlanStep, { type: 'routing' }>, ctx: RunContext): PlanRoute[] {
  return uniqueBy([...step.routes, ...[...ctx.routes.values()].flat()], routeKey);
}
