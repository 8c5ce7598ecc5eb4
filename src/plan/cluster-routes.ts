import { buildModel } from '../manifests/model.js';
import type { KubeObject, LoadedObject, ManifestSet } from '../manifests/types.js';
import { isUserBinding } from './checks/routing.js';
import { planRoutes } from './index.js';
import { routeKey, type PlanRoute } from './phases.js';
import type { WorkloadRef } from './steps.js';

/** What deploy reads from the cluster to find the routes a set does not hold (its Service and Ingress live elsewhere). */
export interface LiveObjects {
  services: KubeObject[];
  ingresses: KubeObject[];
  ingressClasses: KubeObject[];
  bindings: KubeObject[];
}

/** An object read from the cluster, shaped like a loaded manifest so that the model applies to it. */
export function liveObject(object: KubeObject): LoadedObject {
  const source = { file: `cluster:${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`, line: 1 };
  return {
    object,
    ref: { apiVersion: object.apiVersion, kind: object.kind, namespace: object.metadata.namespace ?? '', name: object.metadata.name },
    source,
    locate: () => source,
  };
}

const keyOf = (kind: string, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

/**
 * Every route to each workload, with the set's objects and the live ones together (the set's version of an object
 * wins): Services selecting its pods, every ALB Ingress routing to them, user-made TargetGroupBindings naming them.
 * Pure: the caller lists the live objects.
 */
export function routesWithCluster(set: ManifestSet, workloads: WorkloadRef[], live: LiveObjects): Map<string, PlanRoute[]> {
  const inSet = new Set(set.objects.map((o) => keyOf(o.ref.kind, o.ref.namespace, o.ref.name)));
  const typed = (kind: string, apiVersion: string, items: KubeObject[]): KubeObject[] => items.map((o) => ({ ...o, kind, apiVersion: o.apiVersion ?? apiVersion }));
  const liveObjects = [
    ...typed('Service', 'v1', live.services),
    ...typed('Ingress', 'networking.k8s.io/v1', live.ingresses),
    ...typed('IngressClass', 'networking.k8s.io/v1', live.ingressClasses),
    ...typed('TargetGroupBinding', 'elbv2.k8s.aws/v1beta1', live.bindings.filter(isUserBinding)),
  ]
    .filter((o) => !inSet.has(keyOf(o.kind, o.metadata.namespace ?? '', o.metadata.name)))
    .map(liveObject);
  const model = buildModel({ objects: [...set.objects, ...liveObjects], files: set.files });
  const fromSet = (r: PlanRoute): boolean => {
    const via = r.ingress ? keyOf('Ingress', r.ingress.namespace, r.ingress.name) : r.binding ? keyOf('TargetGroupBinding', r.binding.namespace, r.binding.name) : '';
    return inSet.has(via) && inSet.has(keyOf('Service', r.service.namespace, r.service.name));
  };
  const byService = new Map<string, PlanRoute[]>();
  for (const r of planRoutes(model)) {
    const route: PlanRoute = { ...r, from: fromSet(r) ? 'set' : 'cluster' };
    const k = `${r.service.namespace}/${r.service.name}`;
    byService.set(k, [...(byService.get(k) ?? []), route]);
  }
  const out = new Map<string, PlanRoute[]>();
  const deployments = new Map(model.deployments.map((d) => [`${d.kind}/${d.namespace}/${d.name}`, d]));
  for (const w of workloads) {
    const d = deployments.get(`${w.kind}/${w.namespace}/${w.name}`);
    const routes = (d?.services ?? []).flatMap((s) => byService.get(`${s.namespace}/${s.name}`) ?? []);
    const seen = new Set<string>();
    out.set(
      `${w.namespace}/${w.name}`,
      routes.filter((r) => {
        const k = routeKey(r);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      }),
    );
  }
  return out;
}
