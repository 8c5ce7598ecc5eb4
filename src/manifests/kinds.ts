/** Facts about Kubernetes kinds that the loader and planner need without asking a cluster. */

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'IngressClass',
  'IngressClassParams',
  'PersistentVolume',
  'StorageClass',
  'PriorityClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'APIService',
  'Node',
  'RuntimeClass',
  'CSIDriver',
  'ClusterIssuer',
]);

/** Built-in (and AWS Load Balancer Controller / Argo) kinds known to be namespaced. */
const NAMESPACED = new Set([
  'Pod', 'Service', 'Endpoints', 'EndpointSlice', 'ConfigMap', 'Secret', 'ServiceAccount', 'Event', 'LimitRange', 'ResourceQuota',
  'PersistentVolumeClaim', 'PodTemplate', 'ReplicationController', 'Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet',
  'ControllerRevision', 'Job', 'CronJob', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'PodDisruptionBudget', 'Role',
  'RoleBinding', 'Lease', 'CSIStorageCapacity', 'TargetGroupBinding', 'Rollout', 'AnalysisTemplate', 'AnalysisRun', 'Experiment',
]);

export function isClusterScoped(_apiVersion: string, kind: string): boolean {
  return CLUSTER_SCOPED.has(kind);
}

/**
 * A kind's scope as far as it is known without a cluster. `unknown` kinds are never put in a namespace by guess: the
 * cluster's discovery (or a CustomResourceDefinition in the same set) decides at deploy time.
 */
export function offlineScope(apiVersion: string, kind: string): 'cluster' | 'namespaced' | 'unknown' {
  if (isClusterScoped(apiVersion, kind)) return 'cluster';
  return NAMESPACED.has(kind) ? 'namespaced' : 'unknown';
}

export interface ApiReplacement {
  use: string;
  removedIn?: string;
  note?: string;
}

/** apiVersions that no supported cluster serves any more, with what to use instead. */
const REMOVED: Record<string, Record<string, ApiReplacement>> = {
  'extensions/v1beta1': {
    Ingress: {
      use: 'networking.k8s.io/v1',
      removedIn: '1.22',
      note: 'backends become service: {name, port: {number}} and pathType is required',
    },
    Deployment: { use: 'apps/v1', removedIn: '1.16', note: 'spec.selector is required' },
    ReplicaSet: { use: 'apps/v1', removedIn: '1.16' },
    DaemonSet: { use: 'apps/v1', removedIn: '1.16' },
    NetworkPolicy: { use: 'networking.k8s.io/v1', removedIn: '1.16' },
  },
  'networking.k8s.io/v1beta1': {
    Ingress: {
      use: 'networking.k8s.io/v1',
      removedIn: '1.22',
      note: 'backends become service: {name, port: {number}} and pathType is required',
    },
    IngressClass: { use: 'networking.k8s.io/v1', removedIn: '1.22' },
  },
  'apps/v1beta1': { Deployment: { use: 'apps/v1', removedIn: '1.16', note: 'spec.selector is required' } },
  'apps/v1beta2': { Deployment: { use: 'apps/v1', removedIn: '1.16', note: 'spec.selector is required' } },
  'policy/v1beta1': { PodDisruptionBudget: { use: 'policy/v1', removedIn: '1.25' } },
  'autoscaling/v2beta1': { HorizontalPodAutoscaler: { use: 'autoscaling/v2', removedIn: '1.25' } },
  'autoscaling/v2beta2': { HorizontalPodAutoscaler: { use: 'autoscaling/v2', removedIn: '1.26' } },
  'discovery.k8s.io/v1beta1': { EndpointSlice: { use: 'discovery.k8s.io/v1', removedIn: '1.25' } },
  'elbv2.k8s.aws/v1alpha1': {
    TargetGroupBinding: { use: 'elbv2.k8s.aws/v1beta1', note: 'v1alpha1 is served but no longer the storage version' },
  },
};

export function replacementApiVersion(apiVersion: string, kind: string): ApiReplacement | undefined {
  return REMOVED[apiVersion]?.[kind];
}

export function apiGroup(apiVersion: string): string {
  return apiVersion.includes('/') ? (apiVersion.split('/')[0] as string) : '';
}
