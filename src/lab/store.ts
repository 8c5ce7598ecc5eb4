import { EventEmitter } from 'node:events';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import type { ClusterAccess } from './cluster.js';
import { LabRandom } from './random.js';

/**
 * The lab's object store: what etcd + the API server's registry are to a real cluster.
 * Objects are plain JSON, keyed by kind (unique within the lab) + namespace + name.
 * Every write gets a new global resourceVersion; watchers can resume from a version while it is
 * still in the event log, and get 410 Gone after that (as from a compacted etcd).
 * Controllers run in-process against this store; the HTTP API server is a view over it.
 */

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  kind: string;
  object: KubeObject;
  resourceVersion: number;
}

export class StoreError extends Error {
  constructor(
    readonly code: 404 | 409 | 410 | 422 | 400 | 403 | 500,
    readonly reason: 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Gone' | 'Invalid' | 'BadRequest' | 'Forbidden' | 'InternalError',
    message: string,
    readonly causes: Array<{ field: string; message: string; reason?: string }> = [],
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export type AdmissionOperation = 'CREATE' | 'UPDATE';
/** Mutating admission: may change the object in place before it is stored; throw StoreError to reject. */
export type AdmissionHook = (object: KubeObject, operation: AdmissionOperation, old?: KubeObject) => void;

export interface DeleteOptions {
  /** Pods only: seconds until the kubelet force-kills; defaults to the pod's terminationGracePeriodSeconds. */
  gracePeriodSeconds?: number;
  /** Default Background: dependents (by ownerReferences) are deleted after the owner is gone. Orphan keeps them. */
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  /** Optimistic concurrency precondition. */
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** Runs after admission, before anything is stored (the API server's validation); throw StoreError to reject. */
export type Validator = (object: KubeObject) => void;

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
}

const DEFAULT_EVENT_LOG = 5000;

export class ObjectStore implements ClusterAccess {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly log: StoreEvent[] = [];
  private readonly hooks = new Map<string, AdmissionHook[]>();
  private readonly emitter = new EventEmitter();
  private rv = 1;
  /** Object uids come from the lab's seeded stream: the same seed names the same objects the same way. */
  private readonly uids: LabRandom;
  /** Kinds whose deletion is graceful (deletionTimestamp first, removal by a controller). */
  private readonly gracefulKinds = new Set(['Pod']);

  constructor(
    private readonly options: { eventLogSize?: number; now?: () => Date; uids?: LabRandom } = {},
  ) {
    this.emitter.setMaxListeners(0);
    this.uids = options.uids ?? new LabRandom(0, 'store/uids');
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private bucket(kind: string): Map<string, KubeObject> {
    let b = this.objects.get(kind);
    if (!b) {
      b = new Map();
      this.objects.set(kind, b);
    }
    return b;
  }

  addAdmissionHook(kind: string, hook: AdmissionHook): void {
    const list = this.hooks.get(kind) ?? [];
    list.push(hook);
    this.hooks.set(kind, list);
  }

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    const o = this.bucket(kind).get(key(namespace, name));
    return o ? clone(o) : undefined;
  }

  mustGet(kind: string, namespace: string, name: string): KubeObject {
    const o = this.get(kind, namespace, name);
    if (!o) throw notFound(kind, namespace, name);
    return o;
  }

  /** All objects of a kind, in one namespace or (namespace undefined/empty) all of them, sorted by namespace/name. */
  list(kind: string, namespace?: string): ListResult {
    const items: KubeObject[] = [];
    for (const o of this.bucket(kind).values()) {
      if (!namespace || (o.metadata.namespace ?? '') === namespace) items.push(clone(o));
    }
    items.sort((a, b) => key(a.metadata.namespace ?? '', a.metadata.name).localeCompare(key(b.metadata.namespace ?? '', b.metadata.name)));
    return { items, resourceVersion: this.resourceVersion };
  }

  /** Runs admission, then stores. `dryRun` returns what would be stored without storing or notifying. */
  create(kind: string, input: KubeObject, opts: { dryRun?: boolean; validate?: Validator } = {}): KubeObject {
    const obj = clone(input);
    obj.metadata.namespace = obj.metadata.namespace || undefined;
    if (!obj.metadata.namespace) delete obj.metadata.namespace;
    const ns = obj.metadata.namespace;
    if (ns && kind !== 'Namespace' && this.bucket('Namespace').get(key('', ns))?.metadata.deletionTimestamp) {
      throw new StoreError(403, 'Forbidden', `unable to create new content in namespace ${ns} because it is being terminated`);
    }
    for (const hook of this.hooks.get(kind) ?? []) hook(obj, 'CREATE');
    opts.validate?.(obj);
    const k = key(obj.metadata.namespace ?? '', obj.metadata.name);
    if (this.bucket(kind).has(k)) {
      throw new StoreError(409, 'AlreadyExists', `${kind.toLowerCase()}s "${obj.metadata.name}" already exists`);
    }
    obj.metadata.uid = this.uids.uuid();
    obj.metadata.creationTimestamp = this.now();
    obj.metadata.generation = 1;
    delete obj.metadata.deletionTimestamp;
    if (opts.dryRun) return obj;
    this.write(kind, obj, 'ADDED');
    return clone(obj);
  }

  /**
   * Replaces an object. With `expectedResourceVersion` it is an optimistic update (409 Conflict on mismatch).
   * `generation` is bumped when anything outside metadata and status changes.
   */
  update(
    kind: string,
    input: KubeObject,
    opts: { expectedResourceVersion?: string; dryRun?: boolean; subresource?: 'status'; validate?: Validator } = {},
  ): KubeObject {
    const ns = input.metadata.namespace ?? '';
    const current = this.bucket(kind).get(key(ns, input.metadata.name));
    if (!current) throw notFound(kind, ns, input.metadata.name);
    if (opts.expectedResourceVersion && opts.expectedResourceVersion !== current.metadata.resourceVersion) {
      throw new StoreError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${kind.toLowerCase()}s "${input.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    let obj = clone(input);
    if (opts.subresource === 'status') {
      const managedFields = obj.metadata.managedFields;
      obj = { ...clone(current), status: obj.status };
      if (managedFields !== undefined) obj.metadata.managedFields = managedFields;
    } else {
      // The main resource never changes status through a plain update (as on a real API server for kinds with a status subresource).
      if (current.status !== undefined) obj.status = clone(current.status as JsonObject);
      else delete obj.status;
      for (const hook of this.hooks.get(kind) ?? []) hook(obj, 'UPDATE', clone(current));
      opts.validate?.(obj);
    }
    // Server-owned metadata cannot be changed by clients.
    obj.metadata.uid = current.metadata.uid;
    obj.metadata.creationTimestamp = current.metadata.creationTimestamp;
    if (current.metadata.deletionTimestamp) {
      obj.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      obj.metadata.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    }
    if (obj.metadata.namespace === undefined && current.metadata.namespace) obj.metadata.namespace = current.metadata.namespace;
    obj.metadata.generation = current.metadata.generation;
    if (specChanged(current, obj)) obj.metadata.generation = Number(current.metadata.generation ?? 1) + 1;
    if (opts.dryRun) {
      return obj;
    }
    if (JSON.stringify(stripRv(obj)) === JSON.stringify(stripRv(current))) return clone(current); // no-op writes keep the version
    // A graceful deletion finishes when the last finalizer is removed.
    if (obj.metadata.deletionTimestamp && finalizers(obj).length === 0 && !this.gracefulKinds.has(kind) && kind !== 'Namespace') {
      this.write(kind, obj, 'MODIFIED');
      this.removeNow(kind, ns, obj.metadata.name);
      return clone(obj);
    }
    this.write(kind, obj, 'MODIFIED');
    return clone(obj);
  }

  /** Read-modify-write for in-process controllers: retries on its own since nothing else interleaves in one tick. */
  mutate(kind: string, namespace: string, name: string, change: (o: KubeObject) => void, subresource?: 'status'): KubeObject | undefined {
    const current = this.get(kind, namespace, name);
    if (!current) return undefined;
    change(current);
    return this.update(kind, current, subresource ? { subresource } : {});
  }

  /**
   * Deletes as the API server does: objects with finalizers (and Pods, which the kubelet must stop first)
   * get a deletionTimestamp and stay; others go at once. Returns the object as it stands after the call.
   */
  delete(kind: string, namespace: string, name: string, opts: DeleteOptions = {}): { object: KubeObject; removed: boolean } {
    const current = this.bucket(kind).get(key(namespace, name));
    if (!current) throw notFound(kind, namespace, name);
    if (opts.preconditions?.uid && opts.preconditions.uid !== current.metadata.uid) {
      throw new StoreError(409, 'Conflict', `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${String(current.metadata.uid)}`);
    }
    if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== current.metadata.resourceVersion) {
      throw new StoreError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${String(current.metadata.resourceVersion)}`);
    }
    if (kind === 'Namespace') return this.deleteNamespace(current);
    if (opts.propagationPolicy === 'Orphan') this.orphanDependents(String(current.metadata.uid));
    const graceful = this.gracefulKinds.has(kind) && opts.gracePeriodSeconds !== 0;
    if (finalizers(current).length > 0 || graceful) {
      if (current.metadata.deletionTimestamp) {
        // A second delete may shorten the grace period (kubectl delete --grace-period=0 --force).
        if (graceful && opts.gracePeriodSeconds !== undefined) {
          const updated = clone(current);
          const prev = Number(updated.metadata.deletionGracePeriodSeconds ?? Infinity);
          if (opts.gracePeriodSeconds < prev) {
            updated.metadata.deletionGracePeriodSeconds = opts.gracePeriodSeconds;
            this.write(kind, updated, 'MODIFIED');
            return { object: clone(updated), removed: false };
          }
        }
        return { object: clone(current), removed: false };
      }
      const updated = clone(current);
      updated.metadata.deletionTimestamp = this.now();
      if (graceful) {
        const podGrace = (updated.spec as JsonObject | undefined)?.terminationGracePeriodSeconds;
        updated.metadata.deletionGracePeriodSeconds = opts.gracePeriodSeconds ?? (typeof podGrace === 'number' ? podGrace : 30);
      } else {
        updated.metadata.deletionGracePeriodSeconds = 0;
      }
      this.write(kind, updated, 'MODIFIED');
      return { object: clone(updated), removed: false };
    }
    return { object: this.removeNow(kind, namespace, name), removed: true };
  }

  /** Removes an object immediately (the kubelet's final delete of a stopped pod, or a grace period of 0). */
  removeNow(kind: string, namespace: string, name: string): KubeObject {
    const b = this.bucket(kind);
    const k = key(namespace, name);
    const current = b.get(k);
    if (!current) throw notFound(kind, namespace, name);
    b.delete(k);
    const gone = clone(current);
    this.rv++;
    gone.metadata.resourceVersion = String(this.rv);
    this.append({ type: 'DELETED', kind, object: gone, resourceVersion: this.rv });
    this.collectDependents(String(current.metadata.uid));
    if (namespace && kind !== 'Namespace') this.finishNamespaceIfEmpty(namespace);
    return clone(gone);
  }

  /**
   * Namespace deletion as the namespace controller does it: phase Terminating with a deletionTimestamp, every
   * object in it deleted (graceful ones keep going), and the namespace itself removed once it is empty.
   */
  private deleteNamespace(current: KubeObject): { object: KubeObject; removed: boolean } {
    const name = current.metadata.name;
    let last = clone(current);
    if (!current.metadata.deletionTimestamp) {
      const updated = clone(current);
      updated.metadata.deletionTimestamp = this.now();
      updated.metadata.deletionGracePeriodSeconds = 0;
      updated.status = { ...((updated.status as JsonObject | undefined) ?? {}), phase: 'Terminating' };
      this.write('Namespace', updated, 'MODIFIED');
      last = clone(updated);
      for (const [kind, o] of [...this.allObjects()]) {
        if (kind === 'Namespace' || o.metadata.namespace !== name || o.metadata.deletionTimestamp) continue;
        if (!this.bucket(kind).has(key(name, o.metadata.name))) continue; // already collected as a dependent
        this.delete(kind, name, o.metadata.name);
      }
    }
    // Removing the last object inside may already have finished the namespace.
    const remaining = this.get('Namespace', '', name);
    if (!remaining) return { object: last, removed: true };
    const removed = this.finishNamespaceIfEmpty(name);
    if (removed) return { object: removed, removed: true };
    return { object: remaining, removed: false };
  }

  /** Removes a terminating namespace once nothing is left in it; returns the removed namespace. */
  private finishNamespaceIfEmpty(name: string): KubeObject | undefined {
    const ns = this.bucket('Namespace').get(key('', name));
    if (!ns?.metadata.deletionTimestamp) return undefined;
    for (const [kind, o] of this.allObjects()) if (kind !== 'Namespace' && o.metadata.namespace === name) return undefined;
    return this.removeNow('Namespace', '', name);
  }

  /**
   * Subscribes to changes of one kind (or all kinds with '*'), optionally in one namespace, replaying events after
   * `sinceResourceVersion`. Throws 410 Gone when that version has fallen out of the event log.
   */
  watch(
    kind: string,
    namespace: string | undefined,
    sinceResourceVersion: string | undefined,
    handler: (e: StoreEvent) => void,
  ): () => void {
    const matches = (e: StoreEvent): boolean =>
      (kind === '*' || e.kind === kind) && (!namespace || (e.object.metadata.namespace ?? '') === namespace);
    if (sinceResourceVersion !== undefined && sinceResourceVersion !== '' && sinceResourceVersion !== '0') {
      const since = Number(sinceResourceVersion);
      if (!Number.isFinite(since)) throw new StoreError(400, 'BadRequest', `invalid resourceVersion ${sinceResourceVersion}`);
      const oldest = this.log[0]?.resourceVersion ?? this.rv + 1;
      if (since < oldest - 1 && since < this.rv) {
        throw new StoreError(410, 'Gone', `too old resource version: ${since} (${oldest - 1})`);
      }
      for (const e of this.log) if (e.resourceVersion > since && matches(e)) handler(cloneEvent(e));
    }
    const listener = (e: StoreEvent): void => {
      if (matches(e)) handler(cloneEvent(e));
    };
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /** Drops the event log so that every older resourceVersion answers 410 (fault injection; etcd compaction). */
  compact(): void {
    this.log.length = 0;
  }

  private write(kind: string, obj: KubeObject, type: WatchEventType): void {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    this.bucket(kind).set(key(obj.metadata.namespace ?? '', obj.metadata.name), obj);
    this.append({ type, kind, object: clone(obj), resourceVersion: this.rv });
  }

  private append(e: StoreEvent): void {
    this.log.push(e);
    const max = this.options.eventLogSize ?? DEFAULT_EVENT_LOG;
    if (this.log.length > max) this.log.splice(0, this.log.length - max);
    this.emitter.emit('event', e);
  }

  private *allObjects(): Generator<[string, KubeObject]> {
    for (const [kind, b] of this.objects) for (const o of b.values()) yield [kind, o];
  }

  private collectDependents(ownerUid: string): void {
    const dependents: Array<[string, KubeObject]> = [];
    for (const [kind, o] of this.allObjects()) {
      if (ownerRefs(o).some((r) => r.uid === ownerUid)) dependents.push([kind, o]);
    }
    for (const [kind, o] of dependents) {
      const remaining = ownerRefs(o).filter((r) => r.uid !== ownerUid);
      if (remaining.length > 0) {
        this.mutate(kind, o.metadata.namespace ?? '', o.metadata.name, (m) => {
          m.metadata.ownerReferences = remaining;
        });
      } else if (!o.metadata.deletionTimestamp) {
        this.delete(kind, o.metadata.namespace ?? '', o.metadata.name);
      }
    }
  }

  private orphanDependents(ownerUid: string): void {
    for (const [kind, o] of [...this.allObjects()]) {
      if (!ownerRefs(o).some((r) => r.uid === ownerUid)) continue;
      this.mutate(kind, o.metadata.namespace ?? '', o.metadata.name, (m) => {
        m.metadata.ownerReferences = ownerRefs(m).filter((r) => r.uid !== ownerUid);
      });
    }
  }
}

export interface OwnerReference extends JsonObject {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export function ownerRefs(o: KubeObject): OwnerReference[] {
  const refs = o.metadata.ownerReferences;
  return Array.isArray(refs) ? (refs as OwnerReference[]) : [];
}

function finalizers(o: KubeObject): string[] {
  const f = o.metadata.finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function notFound(kind: string, _namespace: string, name: string): StoreError {
  return new StoreError(404, 'NotFound', `${kind.toLowerCase()}s "${name}" not found`);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

function cloneEvent(e: StoreEvent): StoreEvent {
  return { ...e, object: clone(e.object) };
}

/** The object without what does not make a write meaningful: resourceVersion and managedFields timestamps. */
function stripRv(o: KubeObject): KubeObject {
  const c = { ...o, metadata: { ...o.metadata } };
  delete c.metadata.resourceVersion;
  const mf = c.metadata.managedFields;
  if (Array.isArray(mf)) {
    c.metadata.managedFields = mf.map((e) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e)) return e;
      const rest: JsonObject = { ...e };
      delete rest.time;
      return rest;
    });
  }
  return c;
}

function specChanged(a: KubeObject, b: KubeObject): boolean {
  const pick = (o: KubeObject): string => {
    const rest: JsonObject = { ...o };
    delete rest.metadata;
    delete rest.status;
    return JSON.stringify(rest);
  };
  return pick(a) !== pick(b);
}
