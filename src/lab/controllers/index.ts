/**
 * The lab's kube-controller-manager: Deployment, ReplicaSet, StatefulSet, DaemonSet and EndpointSlice (+ legacy
 * Endpoints) controllers, running in-process against the object store.
 */
import type { ObjectStore } from '../store.js';
import type { LabClock } from '../timing.js';
import { DaemonSetController } from './daemonset.js';
import { DeploymentController } from './deployment.js';
import { EndpointSliceController } from './endpointslice.js';
import type { ControllerOptions } from './owner.js';
import { ReplicaSetController } from './replicaset.js';
import { StatefulSetController } from './statefulset.js';

export type { ControllerOptions } from './owner.js';
export { DeploymentController, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, Reasons as DeploymentReasons, computeTemplateHash, equalIgnoreHash, resolveFenceposts } from './deployment.js';
export { ReplicaSetController } from './replicaset.js';
export { StatefulSetController } from './statefulset.js';
export { DaemonSetController } from './daemonset.js';
export { CONTROLLER_REVISION_HASH } from './revisions.js';
export { EndpointSliceController, SERVICE_NAME_LABEL, MANAGED_BY_LABEL, MANAGED_BY, resolveTargetPort } from './endpointslice.js';

export interface RunningControllers {
  stop(): Promise<void>;
}

export function startControllers(store: ObjectStore, clock: LabClock, opts: ControllerOptions = {}): RunningControllers {
  const controllers = [
    new ReplicaSetController(store, clock, opts),
    new DeploymentController(store, clock, opts),
    new StatefulSetController(store, clock, opts),
    new DaemonSetController(store, clock, opts),
    new EndpointSliceController(store, clock, opts),
  ];
  for (const c of controllers) c.start();
  return {
    async stop(): Promise<void> {
      for (const c of controllers) c.stop();
    },
  };
}
