/**
 * Small helpers shared by the lab's controllers and kubelet: typed access to plain-JSON objects,
 * label selectors, int-or-percent arithmetic, names and timestamps. Facts follow upstream Kubernetes
 * (apimachinery label selectors, intstr scaling, the deployment controller's template hash).
 */
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import type { ObjectStore, OwnerReference } from '../store.js';
import { ownerRefs } from '../store.js';

export type Obj = JsonObject;

/** A nested object (created on demand when `create`). */
export function objAt(o: Obj, key: string, create = false): Obj | undefined {
  const v = o[key];
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Obj;
  if (!create) return undefined;
  const fresh: Obj = {};
  o[key] = fresh;
  return fresh;
}

export function arrAt(o: Obj | undefined, key: string): Obj[] {
  const v = o?.[key];
  return Array.isArray(v) ? (v.filter((x) => x !== null && typeof x === 'object' && !Array.isArray(x)) as Obj[]) : [];
}

export function strAt(o: Obj | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' ? v : undefined;
}

export function numAt(o: Obj | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function spec(o: KubeObject): Obj {
  return objAt(o, 'spec', true) as Obj;
}

export function status(o: KubeObject): Obj {
  return objAt(o, 'status', true) as Obj;
}

export function ns(o: KubeObject): string {
  return o.metadata.namespace ?? '';
}

export function keyOf(o: KubeObject): string {
  return `${ns(o)}/${o.metadata.name}`;
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

export function labelsOf(o: { metadata?: JsonValue } | KubeObject): Record<string, string> {
  const md = (o as Obj).metadata;
  if (!md || typeof md !== 'object' || Array.isArray(md)) return {};
  const l = (md as Obj).labels;
  return l && typeof l === 'object' && !Array.isArray(l) ? (l as Record<string, string>) : {};
}

export function annotationsOf(o: KubeObject): Record<string, string> {
  const a = o.metadata.annotations;
  return a && typeof a === 'object' ? a : {};
}

export function controllerRef(o: KubeObject): OwnerReference | undefined {
  return ownerRefs(o).find((r) => r.controller === true);
}

export function isControlledBy(o: KubeObject, owner: KubeObject): boolean {
  return controllerRef(o)?.uid === owner.metadata.uid;
}

export function newControllerRef(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: String(owner.metadata.uid),
    controller: true,
    blockOwnerDeletion: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Label selectors (metav1.LabelSelector for Deployment/ReplicaSet, map selectors for Service)

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** metav1.LabelSelectorAsSelector: an absent selector matches nothing, an empty one everything. */
export function selectorMatches(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(labels[e.key] as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[e.key] as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

export function selectorIsEmpty(sel: LabelSelector | undefined): boolean {
  return !!sel && Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
}

/** Service-style selector (map): empty/absent selects nothing. */
export function mapSelectorMatches(sel: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!sel || Object.keys(sel).length === 0) return false;
  return Object.entries(sel).every(([k, v]) => labels[k] === v);
}

// ---------------------------------------------------------------------------------------------
// intstr

/** intstr.GetScaledValueFromIntOrPercent. Percentages are "N%"; a plain numeric string counts as an int. */
export function scaledValue(v: JsonValue | undefined, total: number, roundUp: boolean, dflt: JsonValue): number {
  const value = v === undefined || v === null ? dflt : v;
  if (typeof value === 'number') return Math.trunc(value);
  if (typeof value === 'string') {
    const m = /^(-?\d+)%$/.exec(value.trim());
    if (m) {
      const raw = (Number(m[1]) * total) / 100;
      return roundUp ? Math.ceil(raw) : Math.floor(raw);
    }
    const n = Number(value);
    if (Number.isFinite(n)) return Math.trunc(n);
  }
  throw new Error(`invalid int-or-percent value ${JSON.stringify(value)}: expected an integer or a string like "25%"`);
}

// ---------------------------------------------------------------------------------------------
// Names, hashes, time

/** rand.SafeEncodeString's alphabet (no vowels, no confusable characters). */
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(random: () => number, n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += SAFE[Math.floor(random() * SAFE.length)];
  return s;
}

export function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += SAFE[s.charCodeAt(i) % SAFE.length];
  return out;
}

export { fnv32a } from '../random.js';

/** JSON with sorted keys, so that equal objects give equal strings. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** RFC 3339 with milliseconds: lab time is compressed, so second precision would be too coarse. */
export function isoNow(ms = Date.now()): string {
  return new Date(ms).toISOString();
}

/** RFC 3339 without fractions, as most Kubernetes timestamps. */
export function isoSeconds(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function parseTime(s: JsonValue | undefined): number | undefined {
  if (typeof s !== 'string') return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

// ---------------------------------------------------------------------------------------------
// Conditions

export interface Condition extends JsonObject {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  lastProbeTime?: string | null;
}

export function conditions(st: Obj | undefined): Condition[] {
  return arrAt(st, 'conditions') as Condition[];
}

export function getCondition(st: Obj | undefined, type: string): Condition | undefined {
  return conditions(st).find((c) => c.type === type);
}

export function podReadyCondition(pod: KubeObject): Condition | undefined {
  return getCondition(objAt(pod, 'status'), 'Ready');
}

export function isPodReady(pod: KubeObject): boolean {
  return podReadyCondition(pod)?.status === 'True';
}

/** podutil.IsPodAvailable: Ready, and Ready for at least minReadySeconds (simulated; lab time is compressed). */
export function podAvailableAt(pod: KubeObject, minReadyMs: number): number | undefined {
  const c = podReadyCondition(pod);
  if (c?.status !== 'True') return undefined;
  if (minReadyMs <= 0) return 0;
  const since = parseTime(c.lastTransitionTime) ?? 0;
  return since + minReadyMs;
}

export function isPodActive(pod: KubeObject): boolean {
  const phase = strAt(objAt(pod, 'status'), 'phase');
  return phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata.deletionTimestamp;
}

/** Creates an object, retrying with another random suffix when the name is taken. */
export function createWithGeneratedName(store: ObjectStore, kind: string, obj: KubeObject, prefix: string, random: () => number): KubeObject {
  for (let attempt = 0; ; attempt++) {
    obj.metadata.name = `${prefix}${randomSuffix(random, 5)}`;
    try {
      return store.create(kind, obj);
    } catch (err) {
      if (attempt < 5 && (err as { code?: number }).code === 409) continue;
      throw err;
    }
  }
}

export function clonePlain<T>(v: T): T {
  return structuredClone(v);
}

/**
 * The order in which a controller saw objects appear: a tie-breaker for creationTimestamps that have only
 * second precision (which of two ReplicaSets or pods is newer).
 */
export class ArrivalOrder {
  private readonly seen = new Map<string, number>();
  private seq = 0;

  /** Records ADDED objects (and, from `start`, the ones already there) and forgets DELETED ones. */
  note(o: KubeObject, type: 'ADDED' | 'MODIFIED' | 'DELETED' = 'ADDED'): void {
    const uid = String(o.metadata.uid);
    if (type === 'DELETED') this.seen.delete(uid);
    else if (type === 'ADDED' && !this.seen.has(uid)) this.seen.set(uid, this.seq++);
  }

  of(o: KubeObject): number {
    return this.seen.get(String(o.metadata.uid)) ?? 0;
  }
}

/** Writes `next` as the object's status through the status subresource, unless it is what the object holds already. */
export function writeStatus(store: ObjectStore, kind: string, o: KubeObject, next: Record<string, unknown>): void {
  if (canonicalJson(o.status ?? {}) === canonicalJson(next)) return;
  store.mutate(
    kind,
    o.metadata.namespace ?? '',
    o.metadata.name,
    (m) => {
      m.status = next as KubeObject['status'];
    },
    'status',
  );
}

/** Deletes a pod its controller gave up (gracefully; already terminating or gone is fine) and records why. */
export function deleteOwnedPod(store: ObjectStore, recorder: { record(involved: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void }, owner: KubeObject, pod: KubeObject, message: string): void {
  if (pod.metadata.deletionTimestamp) return;
  try {
    store.delete('Pod', pod.metadata.namespace ?? '', pod.metadata.name);
    recorder.record(owner, 'Normal', 'SuccessfulDelete', message);
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}
