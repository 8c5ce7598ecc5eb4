import type { KubeObject } from '../manifests/types.js';
import type { AdmissionHook, DeleteOptions, ListResult, StoreEvent } from './store.js';

/**
 * What the lab's own cluster parts (kubelet, LBC emulation, event recorder) need from the cluster, so that they run
 * unchanged on either control plane:
 *
 * - embedded: the in-process `ObjectStore` (reads and writes are immediate, admission hooks run inside writes);
 * - real: `RealCluster` (`controlplane/cluster.ts`), a watch-fed cache of a real API server. Reads come from the
 *   cache; writes go over HTTP in the background (a `mutate` is retried against the latest object on conflict), so
 *   what a write returns is what was asked for, and the cache catches up when the watch delivers the result.
 *   Admission hooks are called by the real API server through the lab's HTTPS webhook.
 *
 * The parts are event driven and idempotent (they recompute from what they read), which is what makes the
 * real tier's eventual consistency harmless to them.
 */
export interface ClusterAccess {
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  mustGet(kind: string, namespace: string, name: string): KubeObject;
  list(kind: string, namespace?: string): ListResult;
  watch(kind: string, namespace: string | undefined, sinceResourceVersion: string | undefined, handler: (e: StoreEvent) => void): () => void;
  create(kind: string, object: KubeObject): KubeObject;
  update(kind: string, object: KubeObject, opts?: { expectedResourceVersion?: string; subresource?: 'status' }): KubeObject;
  mutate(kind: string, namespace: string, name: string, change: (o: KubeObject) => void, subresource?: 'status'): KubeObject | undefined;
  delete(kind: string, namespace: string, name: string, opts?: DeleteOptions): { object: KubeObject; removed: boolean };
  /** Removes an object now (the kubelet's final delete of a stopped pod: grace period 0, same uid). */
  removeNow(kind: string, namespace: string, name: string): KubeObject;
  addAdmissionHook(kind: string, hook: AdmissionHook): void;
}
