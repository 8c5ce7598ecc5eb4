import type { LoadedObject } from '../manifests/types.js';

/**
 * The safe order of DESIGN.md: which phase each kind belongs to and the order inside a phase. The steps
 * (steps.ts) are built from this; the phases are the steps grouped for people and for the plan's JSON.
 */

export const PHASE_NAMES = ['namespaces', 'config', 'routing', 'workloads', 'bake'] as const;
export type PhaseName = (typeof PHASE_NAMES)[number];

export type WaitKind =
  | 'crd-established'
  | 'namespace-label'
  | 'load-balancer'
  | 'target-group-binding'
  | 'rollout-complete'
  | 'readiness-gates'
  | 'targets-healthy'
  | 'targets-drained'
  | 'deregistration-delay'
  | 'bake'
  | 'preflight'
  | 'deferred-dry-run'
  | 'record-revisions'
  | 'guard'
  | 'no-load-balancer'
  | 'not-waited'
  | 'argo-phase'
  | 'argo-not-done'
  | 'cluster-routes';

export interface PlanObject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  file: string;
  line: number;
}

export interface PlanWait {
  kind: WaitKind;
  description: string;
}

export interface PlanPhase {
  name: PhaseName;
  objects: PlanObject[];
  waitFor: PlanWait[];
}

/**
 * A way traffic reaches a Service port through a target group (one TargetGroupBinding): an Ingress's ALB, or a
 * TargetGroupBinding the user made for a target group created outside the controller (Terraform, CloudFormation).
 */
export interface PlanRoute {
  /** The Ingress whose ALB serves the target group; absent for a user-made TargetGroupBinding. */
  ingress?: { namespace: string; name: string; /** alb.ingress.kubernetes.io/group.name: an explicit IngressGroup. */ group?: string };
  /** A user-made TargetGroupBinding (from the set or the cluster). */
  binding?: { namespace: string; name: string };
  /** An NLB the controller builds for the Service itself (type LoadBalancer, aws-load-balancer-type: external). */
  nlb?: true;
  service: { namespace: string; name: string };
  port: string | number;
  targetType: 'ip' | 'instance' | string;
  /** Where the route was found: in the manifests, or among the objects already live in the cluster. */
  from: 'set' | 'cluster';
}

/** "Ingress ns/name" or "TargetGroupBinding ns/name": what makes the route, for messages. */
export function routeVia(r: PlanRoute): string {
  if (r.ingress) return `Ingress ${r.ingress.namespace}/${r.ingress.name}`;
  if (r.nlb) return `NLB of Service ${r.service.namespace}/${r.service.name}`;
  return r.binding ? `TargetGroupBinding ${r.binding.namespace}/${r.binding.name}` : 'a target group';
}

const PHASE_OF_KIND: Record<string, PhaseName> = {
  Namespace: 'namespaces',
  CustomResourceDefinition: 'namespaces',
  Service: 'routing',
  Ingress: 'routing',
  TargetGroupBinding: 'routing',
  Deployment: 'workloads',
  Rollout: 'workloads',
  StatefulSet: 'workloads',
  DaemonSet: 'workloads',
  ReplicaSet: 'workloads',
  Job: 'workloads',
  CronJob: 'workloads',
  Pod: 'workloads',
  HorizontalPodAutoscaler: 'workloads',
};

/** Everything else (RBAC, ConfigMaps, Secrets, PDBs, IngressClass(Params), custom resources…) is configuration. */
export function phaseOf(kind: string): PhaseName {
  return PHASE_OF_KIND[kind] ?? 'config';
}

/** Order inside a phase: what others refer to goes first (a Service before the Ingress that routes to it). */
const KIND_RANK: Record<string, number> = {
  CustomResourceDefinition: 0,
  Namespace: 1,
  ServiceAccount: 10,
  ClusterRole: 11,
  Role: 11,
  ClusterRoleBinding: 12,
  RoleBinding: 12,
  ConfigMap: 13,
  Secret: 13,
  IngressClassParams: 14,
  IngressClass: 15,
  Service: 20,
  TargetGroupBinding: 21,
  Ingress: 22,
  Deployment: 30,
  Rollout: 30,
  HorizontalPodAutoscaler: 31,
};

/** The objects of one phase in apply order (stable: same-rank objects keep the manifests' order). */
export function objectsOfPhase(objects: LoadedObject[], phase: PhaseName): LoadedObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .filter(({ o }) => phaseOf(o.ref.kind) === phase)
    .sort((a, b) => (KIND_RANK[a.o.ref.kind] ?? 16) - (KIND_RANK[b.o.ref.kind] ?? 16) || a.i - b.i)
    .map(({ o }) => o);
}

export function toPlanObject(o: LoadedObject): PlanObject {
  return {
    apiVersion: o.ref.apiVersion,
    kind: o.ref.kind,
    namespace: o.ref.namespace,
    name: o.ref.name,
    file: o.source.file,
    line: o.source.line,
  };
}

/** One route = one target group: the Service port and what makes the target group (an Ingress, or the user's binding). */
export function routeKey(r: Pick<PlanRoute, 'service' | 'port' | 'ingress' | 'binding' | 'nlb'>): string {
  const via = r.ingress ? `ing:${r.ingress.namespace}/${r.ingress.name}` : r.binding ? `tgb:${r.binding.namespace}/${r.binding.name}` : r.nlb ? 'nlb' : '';
  return `${r.service.namespace}/${r.service.name}:${r.port}@${via}`;
}

/** Namespaces that objects live in but that the manifests do not create: they must exist in the cluster. */
export function namespacesThatMustExist(objects: LoadedObject[]): Array<{ name: string; referencedBy: string[] }> {
  const created = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  const refs = new Map<string, string[]>();
  for (const o of objects) {
    const ns = o.ref.namespace;
    if (!ns || created.has(ns)) continue;
    const list = refs.get(ns) ?? [];
    list.push(`${o.ref.kind}/${o.ref.name}`);
    refs.set(ns, list);
  }
  return [...refs.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, referencedBy]) => ({ name, referencedBy }));
}
