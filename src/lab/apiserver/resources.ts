/**
 * The resource registry: one descriptor per kind the lab API server serves. Everything else (routing,
 * discovery, OpenAPI, tables, validation) is driven from these descriptors.
 */
import { PRINTERS, type PrinterColumn } from './printers.js';

export type Verb = 'create' | 'delete' | 'deletecollection' | 'get' | 'list' | 'patch' | 'update' | 'watch';
export type Subresource = 'status' | 'scale';

export interface ResourceDescriptor {
  /** '' for the core group. */
  group: string;
  version: string;
  /** Resource name in URLs, e.g. 'deployments'. */
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: Verb[];
  subresources: Subresource[];
  /** Served from a CRD on a real cluster: strategic merge patch is not supported (415). */
  custom: boolean;
  /** Name validation: 'label' (RFC 1123 label, ≤63, no dots) or 'subdomain' (RFC 1123 subdomain). */
  nameRule: 'label' | 'subdomain' | 'path';
  /** Table columns besides NAME (which is always first). */
  printerColumns: PrinterColumn[];
}

const ALL_VERBS: Verb[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const READ_VERBS: Verb[] = ['get', 'list', 'watch'];

interface Spec {
  group?: string;
  version?: string;
  plural: string;
  kind: string;
  namespaced?: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs?: Verb[];
  subresources?: Subresource[];
  custom?: boolean;
  nameRule?: ResourceDescriptor['nameRule'];
}

function d(s: Spec): ResourceDescriptor {
  return {
    group: s.group ?? '',
    version: s.version ?? 'v1',
    plural: s.plural,
    singular: s.kind.toLowerCase(),
    kind: s.kind,
    namespaced: s.namespaced ?? true,
    shortNames: s.shortNames ?? [],
    categories: s.categories ?? [],
    verbs: s.verbs ?? ALL_VERBS,
    subresources: s.subresources ?? [],
    custom: s.custom ?? false,
    nameRule: s.nameRule ?? 'subdomain',
    printerColumns: PRINTERS[s.kind] ?? PRINTERS.default!,
  };
}

export const RESOURCES: readonly ResourceDescriptor[] = [
  d({ plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'], nameRule: 'label' }),
  d({ plural: 'services', kind: 'Service', shortNames: ['svc'], categories: ['all'], subresources: ['status'], nameRule: 'label' }),
  d({ plural: 'pods', kind: 'Pod', shortNames: ['po'], categories: ['all'], subresources: ['status'] }),
  d({ plural: 'endpoints', kind: 'Endpoints', shortNames: ['ep'] }),
  d({ plural: 'events', kind: 'Event', shortNames: ['ev'], nameRule: 'path' }),
  d({ plural: 'configmaps', kind: 'ConfigMap', shortNames: ['cm'] }),
  d({ plural: 'secrets', kind: 'Secret' }),
  d({ plural: 'serviceaccounts', kind: 'ServiceAccount', shortNames: ['sa'] }),
  d({ group: 'discovery.k8s.io', plural: 'endpointslices', kind: 'EndpointSlice' }),
  d({ group: 'apps', plural: 'deployments', kind: 'Deployment', shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  d({ group: 'apps', plural: 'statefulsets', kind: 'StatefulSet', shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'] }),
  d({ group: 'apps', plural: 'daemonsets', kind: 'DaemonSet', shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  d({ group: 'apps', plural: 'controllerrevisions', kind: 'ControllerRevision' }),
  d({ group: 'apps', plural: 'replicasets', kind: 'ReplicaSet', shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  d({ group: 'networking.k8s.io', plural: 'ingresses', kind: 'Ingress', shortNames: ['ing'], subresources: ['status'] }),
  d({ group: 'networking.k8s.io', plural: 'ingressclasses', kind: 'IngressClass', namespaced: false }),
  d({
    group: 'elbv2.k8s.aws',
    version: 'v1beta1',
    plural: 'targetgroupbindings',
    kind: 'TargetGroupBinding',
    shortNames: ['tgb'],
    subresources: ['status'],
    custom: true,
  }),
  d({
    group: 'admissionregistration.k8s.io',
    plural: 'mutatingwebhookconfigurations',
    kind: 'MutatingWebhookConfiguration',
    namespaced: false,
    categories: ['api-extensions'],
    verbs: READ_VERBS,
  }),
  d({ group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', shortNames: ['hpa'], categories: ['all'], subresources: ['status'] }),
  d({ group: 'policy', plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', shortNames: ['pdb'], subresources: ['status'] }),
  d({ group: 'rbac.authorization.k8s.io', plural: 'roles', kind: 'Role', nameRule: 'path' }),
  d({ group: 'rbac.authorization.k8s.io', plural: 'rolebindings', kind: 'RoleBinding', nameRule: 'path' }),
  d({ group: 'rbac.authorization.k8s.io', plural: 'clusterroles', kind: 'ClusterRole', namespaced: false, nameRule: 'path' }),
  d({ group: 'rbac.authorization.k8s.io', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false, nameRule: 'path' }),
  d({
    group: 'apiextensions.k8s.io',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    subresources: ['status'],
  }),
  d({
    group: 'argoproj.io',
    version: 'v1alpha1',
    plural: 'rollouts',
    kind: 'Rollout',
    shortNames: ['ro'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    custom: true,
  }),
];

export function apiVersionOf(r: Pick<ResourceDescriptor, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The URL prefix of a group version: '/api/v1' or '/apis/<group>/<version>'. */
export function gvPath(group: string, version: string): string {
  return group ? `/apis/${group}/${version}` : `/api/${version}`;
}

/** 'deployments.apps' or 'pods': how the real server names a resource in messages. */
export function qualifiedResource(r: ResourceDescriptor): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

export interface GroupVersion {
  group: string;
  version: string;
  resources: ResourceDescriptor[];
}

/** The group versions served: the built-in kinds, then `custom` (the kinds of Established CRDs). */
export function groupVersions(custom: readonly ResourceDescriptor[] = []): GroupVersion[] {
  const out: GroupVersion[] = [];
  for (const r of [...RESOURCES, ...custom]) {
    let gv = out.find((g) => g.group === r.group && g.version === r.version);
    if (!gv) {
      gv = { group: r.group, version: r.version, resources: [] };
      out.push(gv);
    }
    gv.resources.push(r);
  }
  return out;
}

export function findByPlural(group: string, version: string, plural: string, custom: readonly ResourceDescriptor[] = []): ResourceDescriptor | undefined {
  const match = (r: ResourceDescriptor): boolean => r.group === group && r.version === version && r.plural === plural;
  return RESOURCES.find(match) ?? custom.find(match);
}

/**
 * The kinds a CustomResourceDefinition serves, one per served version (apiextensions.k8s.io/v1). None for a kind the
 * lab serves built in (its TargetGroupBinding and Rollout stand in for those CRDs).
 */
export function descriptorsOfCrd(crd: object): ResourceDescriptor[] {
  const spec = ((crd as { spec?: unknown }).spec ?? {}) as { group?: string; scope?: string; names?: { plural?: string; singular?: string; kind?: string; shortNames?: string[]; categories?: string[] }; versions?: Array<{ name?: string; served?: boolean; subresources?: { status?: unknown; scale?: unknown } }> };
  const names = spec.names ?? {};
  if (!spec.group || !names.plural || !names.kind) return [];
  const out: ResourceDescriptor[] = [];
  for (const v of spec.versions ?? []) {
    if (!v.name || v.served === false) continue;
    if (RESOURCES.some((r) => r.group === spec.group && r.plural === names.plural)) continue;
    const subresources: Subresource[] = [];
    if (v.subresources?.status !== undefined) subresources.push('status');
    if (v.subresources?.scale !== undefined) subresources.push('scale');
    out.push({
      ...d({ group: spec.group, version: v.name, plural: names.plural, kind: names.kind, namespaced: spec.scope !== 'Cluster', shortNames: names.shortNames ?? [], categories: names.categories ?? [], subresources, custom: true }),
      singular: names.singular ?? names.kind.toLowerCase(),
    });
  }
  return out;
}

export function findByKind(kind: string): ResourceDescriptor | undefined {
  return RESOURCES.find((r) => r.kind === kind);
}
