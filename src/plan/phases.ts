import type { LoadedObject } from '../manifests/types.js';

/**
 * The safe order of DESIGN.md as data: which objects each phase applies and what the run waits for
 * before the next phase starts. Pure: built from the manifests and the application model.
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
  | 'bake';

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

/** A route from an Ingress to a Service port: one target group (and one TargetGroupBinding) in LBC. */
export interface PlanRoute {
  ingress: { namespace: string; name: string };
  service: { namespace: string; name: string };
  port: string | number;
  targetType: 'ip' | 'instance' | string;
}

export interface PlanInputs {
  objects: LoadedObject[];
  routes: PlanRoute[];
  /** Namespaces labelled by deploy when readiness gates are injected. */
  gateNamespaces: string[];
  readinessGates: 'inject' | 'require' | 'off';
  /** Deployments (and Argo Rollouts) with the target groups that route to them. */
  workloads: Array<{ kind: string; namespace: string; name: string; routes: PlanRoute[] }>;
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

export function buildPhases(inputs: PlanInputs): PlanPhase[] {
  const phases = new Map<PhaseName, PlanPhase>(
    PHASE_NAMES.map((name) => [name, { name, objects: objectsOfPhase(inputs.objects, name).map(toPlanObject), waitFor: [] }]),
  );
  const get = (name: PhaseName): PlanPhase => phases.get(name) as PlanPhase;

  for (const crd of get('namespaces').objects.filter((o) => o.kind === 'CustomResourceDefinition')) {
    get('namespaces').waitFor.push({ kind: 'crd-established', description: `CustomResourceDefinition ${crd.name} is Established` });
  }
  if (inputs.readinessGates !== 'off') {
    for (const ns of inputs.gateNamespaces) {
      get('namespaces').waitFor.push({
        kind: 'namespace-label',
        description: `namespace ${ns} carries elbv2.k8s.aws/pod-readiness-gate-inject=enabled${inputs.readinessGates === 'inject' ? ' (added by deploy if missing)' : ''}`,
      });
    }
  }

  const ingresses = uniqueBy(inputs.routes.map((r) => r.ingress), (i) => `${i.namespace}/${i.name}`);
  for (const ing of ingresses) {
    get('routing').waitFor.push({
      kind: 'load-balancer',
      description: `Ingress ${ing.namespace}/${ing.name} has an ALB hostname in status.loadBalancer.ingress (no FailedBuildModel/FailedDeployModel events)`,
    });
  }
  for (const r of uniqueBy(inputs.routes, routeKey)) {
    get('routing').waitFor.push({
      kind: 'target-group-binding',
      description: `TargetGroupBinding with targetType ${r.targetType === 'ip' ? 'ip' : `ip (the route says ${r.targetType}: gates cannot work)`} exists for Service ${r.service.namespace}/${r.service.name} port ${r.port}`,
    });
  }

  for (const w of inputs.workloads) {
    const id = `${w.kind} ${w.namespace}/${w.name}`;
    const workloads = get('workloads');
    workloads.waitFor.push({
      kind: 'rollout-complete',
      description: `${id}: rollout complete (updated = ready = available = desired replicas, no old pods left, observedGeneration current)`,
    });
    if (w.routes.length === 0) continue;
    if (inputs.readinessGates !== 'off') {
      workloads.waitFor.push({
        kind: 'readiness-gates',
        description: `${id}: every new pod carries the target-health.elbv2.k8s.aws/<binding> gate(s) and they are True`,
      });
    }
    const tgs = w.routes.map((r) => `${r.service.name}:${r.port}`).join(', ');
    workloads.waitFor.push({
      kind: 'targets-healthy',
      description: `${id}: in the target group(s) for ${tgs} every new pod IP:port is healthy and registered targets equal ready endpoints`,
    });
    workloads.waitFor.push({
      kind: 'targets-drained',
      description: `${id}: no old pod IP:port is still draining in ${tgs}`,
    });
    workloads.waitFor.push({
      kind: 'deregistration-delay',
      description: `${id}: the target group's deregistration_delay.timeout_seconds on AWS is the tuned value`,
    });
  }
  if (inputs.workloads.length > 0) {
    get('bake').waitFor.push({ kind: 'bake', description: 'the bake window passes with the 5xx guard quiet' });
  }
  return PHASE_NAMES.map(get).filter((p) => p.objects.length > 0 || p.waitFor.length > 0);
}

export function routeKey(r: PlanRoute): string {
  return `${r.service.namespace}/${r.service.name}:${r.port}`;
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

function uniqueBy<T>(items: T[], keyOf: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = keyOf(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

