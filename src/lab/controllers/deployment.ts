/**
 * Deployment controller, following upstream pkg/controller/deployment (sync.go, rolling.go, recreate.go,
 * progress.go, util/deployment_util.go): template hash → ReplicaSet `<deploy>-<hash>`, rolling-update
 * arithmetic with maxSurge/maxUnavailable, Recreate, revisions and revision history (what
 * `kubectl rollout undo` relies on), revisionHistoryLimit cleanup, status and the Available/Progressing
 * conditions including ProgressDeadlineExceeded, and spec.paused.
 *
 * Lab differences: progressDeadlineSeconds and minReadySeconds are simulated seconds; condition
 * timestamps carry milliseconds (lab time is compressed); orphaned ReplicaSets are not adopted.
 */
import type { JsonValue, KubeObject } from '../../manifests/types.js';
import type { ObjectStore, StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { OwnerController, type ControllerOptions } from './owner.js';
import {
  type Condition,
  type LabelSelector,
  type Obj,
  canonicalJson,
  clonePlain,
  conditions,
  controllerRef,
  fnv32a,
  getCondition,
  isControlledBy,
  isoNow,
  keyOf,
  labelsOf,
  newControllerRef,
  numAt,
  objAt,
  parseTime,
  safeEncode,
  scaledValue,
  selectorIsEmpty,
  selectorMatches,
  splitKey,
  strAt,
} from './util.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
export const POD_TEMPLATE_HASH = 'pod-template-hash';

const MAX_INT32 = 2147483647;
const REV_HISTORY_LIMIT_CHARS = 2000;
const ANNOTATIONS_NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  REVISION_HISTORY,
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  'deprecated.deployment.rollback.to',
]);

/** Condition reasons (upstream deploymentutil). */
export const Reasons = {
  NewReplicaSetCreated: 'NewReplicaSetCreated',
  FoundNewReplicaSet: 'FoundNewReplicaSet',
  NewReplicaSetAvailable: 'NewReplicaSetAvailable',
  ReplicaSetUpdated: 'ReplicaSetUpdated',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
  DeploymentPaused: 'DeploymentPaused',
  DeploymentResumed: 'DeploymentResumed',
} as const;

type RS = KubeObject;

// ---------------------------------------------------------------------------------------------
// Pure helpers on Deployment / ReplicaSet JSON (defaults applied when absent)

function dspec(d: KubeObject): Obj {
  return objAt(d, 'spec') ?? {};
}

export function desiredReplicas(d: KubeObject): number {
  return numAt(dspec(d), 'replicas') ?? 1;
}

function strategyType(d: KubeObject): 'RollingUpdate' | 'Recreate' {
  return strAt(objAt(dspec(d), 'strategy'), 'type') === 'Recreate' ? 'Recreate' : 'RollingUpdate';
}

/** deploymentutil.ResolveFenceposts: surge rounds up, unavailable rounds down, both 0 → unavailable 1. */
export function resolveFenceposts(
  maxSurge: JsonValue | undefined,
  maxUnavailable: JsonValue | undefined,
  desired: number,
): { surge: number; unavailable: number } {
  const surge = scaledValue(maxSurge, desired, true, '25%');
  let unavailable = scaledValue(maxUnavailable, desired, false, '25%');
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

function fenceposts(d: KubeObject): { surge: number; unavailable: number } {
  const ru = objAt(objAt(dspec(d), 'strategy') ?? {}, 'rollingUpdate');
  return resolveFenceposts(ru?.maxSurge, ru?.maxUnavailable, desiredReplicas(d));
}

export function maxSurge(d: KubeObject): number {
  if (strategyType(d) !== 'RollingUpdate') return 0;
  return fenceposts(d).surge;
}

export function maxUnavailable(d: KubeObject): number {
  const replicas = desiredReplicas(d);
  if (strategyType(d) !== 'RollingUpdate' || replicas === 0) return 0;
  return Math.min(fenceposts(d).unavailable, replicas);
}

function progressDeadline(d: KubeObject): number | undefined {
  const v = numAt(dspec(d), 'progressDeadlineSeconds') ?? 600;
  return v === MAX_INT32 ? undefined : v;
}

function rsReplicas(rs: RS | undefined): number {
  return rs ? (numAt(objAt(rs, 'spec'), 'replicas') ?? 1) : 0;
}

function rsStatusNum(rs: RS | undefined, field: string): number {
  return rs ? (numAt(objAt(rs, 'status'), field) ?? 0) : 0;
}

function revisionOf(o: KubeObject): number {
  const v = Number.parseInt(o.metadata.annotations?.[REVISION] ?? '', 10);
  return Number.isFinite(v) ? v : 0;
}

/**
 * The template as the Go controller sees it after decoding into typed structs: a JSON `null` is the zero value,
 * the same as an absent field. `kubectl rollout undo` sends the old ReplicaSet's template with
 * `metadata.creationTimestamp: null`; without this it would not match that ReplicaSet again.
 */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== null && x !== undefined) out[k] = withoutNulls(x);
  return out;
}

function templateWithoutHash(t: JsonValue | undefined): unknown {
  const c = withoutNulls(clonePlain((t ?? {}) as Obj)) as Obj;
  const md = objAt(c, 'metadata');
  const labels = md && objAt(md, 'labels');
  if (md && labels) {
    delete labels[POD_TEMPLATE_HASH];
    if (Object.keys(labels).length === 0) delete md.labels;
  }
  if (md && Object.keys(md).length === 0) delete c.metadata;
  return c;
}

/** deploymentutil.EqualIgnoreHash. */
export function equalIgnoreHash(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return canonicalJson(templateWithoutHash(a)) === canonicalJson(templateWithoutHash(b));
}

/** controller.ComputeHash: FNV-32a of the template (+ collisionCount), encoded with rand.SafeEncodeString. */
export function computeTemplateHash(template: JsonValue | undefined, collisionCount?: number): string {
  let data = canonicalJson(withoutNulls(template ?? {}));
  if (collisionCount !== undefined) data += `#${collisionCount}`;
  return safeEncode(String(fnv32a(data)));
}

function sumReplicas(rss: Array<RS | undefined>): number {
  return rss.reduce((s, rs) => s + rsReplicas(rs), 0);
}

function sumStatus(rss: Array<RS | undefined>, field: string): number {
  return rss.reduce((s, rs) => s + rsStatusNum(rs, field), 0);
}

function newCondition(type: string, status: string, reason: string, message: string): Condition {
  const now = isoNow();
  return { type, status, lastUpdateTime: now, lastTransitionTime: now, reason, message };
}

/** deploymentutil.SetDeploymentCondition: same status+reason → unchanged; same status keeps lastTransitionTime. */
function setCondition(st: Obj, cond: Condition): void {
  const current = getCondition(st, cond.type);
  if (current && current.status === cond.status && current.reason === cond.reason) return;
  if (current && current.status === cond.status && current.lastTransitionTime) cond.lastTransitionTime = current.lastTransitionTime;
  st.conditions = [...conditions(st).filter((c) => c.type !== cond.type), cond];
}

function removeCondition(st: Obj, type: string): void {
  st.conditions = conditions(st).filter((c) => c.type !== type);
}

/** deploymentutil.DeploymentComplete. */
function deploymentComplete(d: KubeObject, st: Obj): boolean {
  const r = desiredReplicas(d);
  return (
    (numAt(st, 'updatedReplicas') ?? 0) === r &&
    (numAt(st, 'replicas') ?? 0) === r &&
    (numAt(st, 'availableReplicas') ?? 0) === r &&
    (numAt(st, 'observedGeneration') ?? 0) >= Number(d.metadata.generation ?? 1)
  );
}

/** deploymentutil.DeploymentProgressing. */
function deploymentProgressing(d: KubeObject, next: Obj): boolean {
  const old = objAt(d, 'status') ?? {};
  const n = (o: Obj, f: string): number => numAt(o, f) ?? 0;
  const oldOld = n(old, 'replicas') - n(old, 'updatedReplicas');
  const newOld = n(next, 'replicas') - n(next, 'updatedReplicas');
  return (
    n(next, 'updatedReplicas') > n(old, 'updatedReplicas') ||
    newOld < oldOld ||
    n(next, 'readyReplicas') > n(old, 'readyReplicas') ||
    n(next, 'availableReplicas') > n(old, 'availableReplicas')
  );
}

// ---------------------------------------------------------------------------------------------

export class DeploymentController extends OwnerController {
  constructor(store: ObjectStore, clock: LabClock, opts: ControllerOptions = {}) {
    super(store, clock, { controller: 'deployment-controller', owner: 'Deployment', owned: 'ReplicaSet' }, opts);
  }

  protected override watchMore(): void {
    this.watch('Pod', (e) => this.onPod(e));
  }

  /** Recreate waits for old pods to be gone: a pod deletion may unblock it (upstream deletePod handler). */
  private onPod(e: StoreEvent): void {
    if (e.type !== 'DELETED') return;
    const ref = controllerRef(e.object);
    if (ref?.kind !== 'ReplicaSet') return;
    const rs = this.store.get('ReplicaSet', e.object.metadata.namespace ?? '', ref.name);
    const dref = rs && controllerRef(rs);
    if (dref?.kind === 'Deployment') this.queue.add(`${e.object.metadata.namespace ?? ''}/${dref.name}`);
  }

  /** ReplicaSets by creation time, oldest first (ties: the order this controller saw them, then name). */
  private byCreation(rss: RS[]): RS[] {
    const t = (rs: RS): number => parseTime(rs.metadata.creationTimestamp as string | undefined) ?? 0;
    const o = (rs: RS): number => this.arrivals.of(rs);
    return [...rss].sort((a, b) => t(a) - t(b) || o(a) - o(b) || a.metadata.name.localeCompare(b.metadata.name));
  }

  // -------------------------------------------------------------------------------------------
  // sync

  protected sync(key: string): void {
    const [namespace, name] = splitKey(key);
    let d = this.store.get('Deployment', namespace, name);
    if (!d) return;
    const selector = objAt(dspec(d), 'selector') as LabelSelector | undefined;
    if (selectorIsEmpty(selector)) {
      this.recorder.record(d, 'Warning', 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
      if ((numAt(objAt(d, 'status'), 'observedGeneration') ?? 0) < Number(d.metadata.generation ?? 1)) {
        const gen = Number(d.metadata.generation ?? 1);
        this.store.mutate('Deployment', namespace, name, (o) => {
          (objAt(o, 'status', true) as Obj).observedGeneration = gen;
        }, 'status');
      }
      return;
    }
    const rsList = this.byCreation(this.store.list('ReplicaSet', namespace).items.filter((rs) => isControlledBy(rs, d as KubeObject)));
    if (d.metadata.deletionTimestamp) {
      const { newRS, oldRSs } = this.findReplicaSets(d, rsList);
      this.syncDeploymentStatus(d, [...oldRSs, newRS], newRS);
      return;
    }
    d = this.checkPausedConditions(d);
    if (dspec(d).paused === true) return this.syncScaleOnly(d, rsList);
    if (this.isScalingEvent(d, rsList)) return this.syncScaleOnly(d, rsList);
    if (strategyType(d) === 'Recreate') return this.rolloutRecreate(d, rsList);
    return this.rolloutRolling(d, rsList);
  }

  private findReplicaSets(d: KubeObject, rsList: RS[]): { newRS: RS | undefined; oldRSs: RS[] } {
    const template = dspec(d).template;
    const newRS = rsList.find((rs) => equalIgnoreHash(objAt(rs, 'spec')?.template, template));
    return { newRS, oldRSs: rsList.filter((rs) => rs !== newRS) };
  }

  private isScalingEvent(d: KubeObject, rsList: RS[]): boolean {
    const { newRS, oldRSs } = this.findReplicaSets(d, rsList);
    for (const rs of [...oldRSs, newRS]) {
      if (!rs || rsReplicas(rs) <= 0) continue;
      const desired = rs.metadata.annotations?.[DESIRED_REPLICAS];
      if (desired === undefined) continue;
      if (Number(desired) !== desiredReplicas(d)) return true;
    }
    return false;
  }

  private updateStatus(d: KubeObject, next: Obj): KubeObject {
    return (
      this.store.mutate('Deployment', d.metadata.namespace ?? '', d.metadata.name, (o) => {
        o.status = next;
      }, 'status') ?? d
    );
  }

  private checkPausedConditions(d: KubeObject): KubeObject {
    if (progressDeadline(d) === undefined) return d;
    const st = clonePlain(objAt(d, 'status') ?? {});
    const cond = getCondition(st, 'Progressing');
    if (cond?.reason === Reasons.ProgressDeadlineExceeded) return d;
    const pausedCondExists = cond?.reason === Reasons.DeploymentPaused;
    const paused = dspec(d).paused === true;
    if (paused && !pausedCondExists) {
      setCondition(st, newCondition('Progressing', 'Unknown', Reasons.DeploymentPaused, 'Deployment is paused'));
    } else if (!paused && pausedCondExists) {
      setCondition(st, newCondition('Progressing', 'Unknown', Reasons.DeploymentResumed, 'Deployment is resumed'));
    } else {
      return d;
    }
    return this.updateStatus(d, st);
  }

  /**
   * getAllReplicaSetsAndSyncRevision + getNewReplicaSet: finds (or creates) the new ReplicaSet, moves it to
   * revision max(old)+1 when its template comes back (rollout undo), and syncs the Deployment's revision.
   */
  private getAllReplicaSetsAndSyncRevision(
    d: KubeObject,
    rsList: RS[],
    createIfNotExisted: boolean,
  ): { d: KubeObject; newRS: RS | undefined; oldRSs: RS[] } {
    const { newRS: existing, oldRSs } = this.findReplicaSets(d, rsList);
    const maxOld = oldRSs.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
    const newRevision = String(maxOld + 1);
    const namespace = d.metadata.namespace ?? '';
    if (existing) {
      let rs = existing;
      const copy = clonePlain(existing);
      const annotationsChanged = setNewReplicaSetAnnotations(d, copy, newRevision, true);
      const minReady = numAt(dspec(d), 'minReadySeconds') ?? 0;
      const minReadyChanged = (numAt(objAt(copy, 'spec'), 'minReadySeconds') ?? 0) !== minReady;
      if (annotationsChanged || minReadyChanged) {
        (objAt(copy, 'spec', true) as Obj).minReadySeconds = minReady;
        rs = this.store.update('ReplicaSet', copy);
      }
      d = this.setDeploymentRevision(d, rs.metadata.annotations?.[REVISION] ?? newRevision);
      if (progressDeadline(d) !== undefined && !getCondition(objAt(d, 'status'), 'Progressing')) {
        const st = clonePlain(objAt(d, 'status') ?? {});
        setCondition(st, newCondition('Progressing', 'True', Reasons.FoundNewReplicaSet, `Found new replica set "${rs.metadata.name}"`));
        d = this.updateStatus(d, st);
      }
      return { d, newRS: rs, oldRSs };
    }
    if (!createIfNotExisted) return { d, newRS: undefined, oldRSs };

    const template = clonePlain((dspec(d).template ?? {}) as Obj);
    const collisionCount = numAt(objAt(d, 'status'), 'collisionCount');
    const hash = computeTemplateHash(template, collisionCount);
    const tmeta = objAt(template, 'metadata', true) as Obj;
    tmeta.labels = { ...((objAt(tmeta, 'labels') as Record<string, string> | undefined) ?? {}), [POD_TEMPLATE_HASH]: hash };
    const selector = clonePlain((objAt(dspec(d), 'selector') ?? {}) as Obj);
    selector.matchLabels = { ...((objAt(selector, 'matchLabels') as Record<string, string> | undefined) ?? {}), [POD_TEMPLATE_HASH]: hash };
    const rs: RS = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace,
        labels: { ...(tmeta.labels as Record<string, string>) },
        ownerReferences: [newControllerRef(d)],
      },
      spec: {
        replicas: 0,
        minReadySeconds: numAt(dspec(d), 'minReadySeconds') ?? 0,
        selector,
        template,
      },
      status: { replicas: 0 },
    };
    (rs.spec as Obj).replicas = this.newRSNewReplicas(d, [...oldRSs, rs], rs);
    setNewReplicaSetAnnotations(d, rs, newRevision, false);
    let created: RS;
    try {
      created = this.store.create('ReplicaSet', rs);
      this.arrivals.note(created);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      const clash = this.store.get('ReplicaSet', namespace, rs.metadata.name);
      if (clash && isControlledBy(clash, d) && equalIgnoreHash(objAt(clash, 'spec')?.template, dspec(d).template)) {
        return { d, newRS: clash, oldRSs };
      }
      // A hash collision: bump collisionCount so that the next sync computes another name.
      const st = clonePlain(objAt(d, 'status') ?? {});
      st.collisionCount = (collisionCount ?? 0) + 1;
      this.updateStatus(d, st);
      throw new Error(`ReplicaSet ${namespace}/${rs.metadata.name} exists with another template (hash collision); collisionCount is now ${String(st.collisionCount)}`);
    }
    const replicas = rsReplicas(created);
    if (replicas > 0) {
      this.recorder.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${created.metadata.name} from 0 to ${replicas}`);
    }
    d = this.setDeploymentRevision(d, newRevision);
    if (progressDeadline(d) !== undefined) {
      const st = clonePlain(objAt(d, 'status') ?? {});
      setCondition(st, newCondition('Progressing', 'True', Reasons.NewReplicaSetCreated, `Created new replica set "${created.metadata.name}"`));
      d = this.updateStatus(d, st);
    }
    return { d, newRS: created, oldRSs };
  }

  private setDeploymentRevision(d: KubeObject, revision: string): KubeObject {
    if (d.metadata.annotations?.[REVISION] === revision) return d;
    return (
      this.store.mutate('Deployment', d.metadata.namespace ?? '', d.metadata.name, (o) => {
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}), [REVISION]: revision };
      }) ?? d
    );
  }

  /** deploymentutil.NewRSNewReplicas. */
  private newRSNewReplicas(d: KubeObject, allRSs: RS[], newRS: RS): number {
    if (strategyType(d) === 'Recreate') return desiredReplicas(d);
    const current = sumReplicas(allRSs);
    const maxTotal = desiredReplicas(d) + maxSurge(d);
    if (current >= maxTotal) return rsReplicas(newRS);
    const scaleUp = Math.min(maxTotal - current, desiredReplicas(d) - rsReplicas(newRS));
    return rsReplicas(newRS) + scaleUp;
  }

  /** scaleReplicaSetAndRecordEvent: also keeps the desired/max-replicas annotations current. */
  private scaleReplicaSet(d: KubeObject, rs: RS, newScale: number): { scaled: boolean; rs: RS } {
    const oldScale = rsReplicas(rs);
    const desired = String(desiredReplicas(d));
    const max = String(desiredReplicas(d) + maxSurge(d));
    const sizeNeedsUpdate = oldScale !== newScale;
    const annotationsNeedUpdate = rs.metadata.annotations?.[DESIRED_REPLICAS] !== desired || rs.metadata.annotations?.[MAX_REPLICAS] !== max;
    if (!sizeNeedsUpdate && !annotationsNeedUpdate) return { scaled: false, rs };
    const updated =
      this.store.mutate('ReplicaSet', rs.metadata.namespace ?? '', rs.metadata.name, (o) => {
        (objAt(o, 'spec', true) as Obj).replicas = newScale;
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}), [DESIRED_REPLICAS]: desired, [MAX_REPLICAS]: max };
      }) ?? rs;
    if (sizeNeedsUpdate) {
      const op = newScale > oldScale ? 'up' : 'down';
      this.recorder.record(d, 'Normal', 'ScalingReplicaSet', `Scaled ${op} replica set ${rs.metadata.name} from ${oldScale} to ${newScale}`);
    }
    return { scaled: sizeNeedsUpdate, rs: updated };
  }

  // -------------------------------------------------------------------------------------------
  // RollingUpdate (rolling.go)

  private rolloutRolling(d0: KubeObject, rsList: RS[]): void {
    const got = this.getAllReplicaSetsAndSyncRevision(d0, rsList, true);
    const d = got.d;
    let newRS = got.newRS as RS;
    let oldRSs = got.oldRSs;
    // reconcileNewReplicaSet
    let scaledUp = false;
    const want = desiredReplicas(d);
    if (rsReplicas(newRS) !== want) {
      const target = rsReplicas(newRS) > want ? want : this.newRSNewReplicas(d, [...oldRSs, newRS], newRS);
      const r = this.scaleReplicaSet(d, newRS, target);
      newRS = r.rs;
      scaledUp = r.scaled;
    }
    if (scaledUp) return this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
    const r = this.reconcileOldReplicaSets(d, oldRSs, newRS);
    oldRSs = r.oldRSs;
    if (r.scaledDown) return this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
    if (deploymentComplete(d, objAt(d, 'status') ?? {})) this.cleanupDeployment(d, oldRSs);
    this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
  }

  private reconcileOldReplicaSets(d: KubeObject, oldRSs: RS[], newRS: RS): { scaledDown: boolean; oldRSs: RS[] } {
    const active = oldRSs.filter((rs) => rsReplicas(rs) > 0);
    if (sumReplicas(active) === 0) return { scaledDown: false, oldRSs };
    const allPods = sumReplicas([...active, newRS]);
    const minAvailable = desiredReplicas(d) - maxUnavailable(d);
    const newRSUnavailable = rsReplicas(newRS) - rsStatusNum(newRS, 'availableReplicas');
    const maxScaledDown = allPods - minAvailable - newRSUnavailable;
    if (maxScaledDown <= 0) return { scaledDown: false, oldRSs };
    const replace = (updated: RS): void => {
      oldRSs = oldRSs.map((rs) => (rs.metadata.uid === updated.metadata.uid ? updated : rs));
    };
    // cleanupUnhealthyReplicas: first remove old pods that are not available anyway.
    let cleaned = 0;
    for (const rs of this.byCreation(active)) {
      if (cleaned >= maxScaledDown) break;
      const replicas = rsReplicas(rs);
      const available = rsStatusNum(rs, 'availableReplicas');
      if (replicas === 0 || replicas === available) continue;
      const down = Math.min(maxScaledDown - cleaned, replicas - available);
      replace(this.scaleReplicaSet(d, rs, replicas - down).rs);
      cleaned += down;
    }
    // scaleDownOldReplicaSetsForRollingUpdate: then as many available ones as minAvailable allows.
    const activeNow = oldRSs.filter((rs) => rsReplicas(rs) > 0);
    const availablePods = sumStatus([...oldRSs, newRS], 'availableReplicas');
    let scaled = 0;
    if (availablePods > minAvailable) {
      const total = availablePods - minAvailable;
      for (const rs of this.byCreation(activeNow)) {
        if (scaled >= total) break;
        const replicas = rsReplicas(rs);
        if (replicas === 0) continue;
        const down = Math.min(replicas, total - scaled);
        replace(this.scaleReplicaSet(d, rs, replicas - down).rs);
        scaled += down;
      }
    }
    return { scaledDown: cleaned + scaled > 0, oldRSs };
  }

  // -------------------------------------------------------------------------------------------
  // Recreate (recreate.go)

  private rolloutRecreate(d0: KubeObject, rsList: RS[]): void {
    let { d, newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(d0, rsList, false);
    let scaledDown = false;
    for (const rs of oldRSs) {
      if (rsReplicas(rs) === 0) continue;
      const r = this.scaleReplicaSet(d, rs, 0);
      oldRSs = oldRSs.map((o) => (o === rs ? r.rs : o));
      if (r.scaled) scaledDown = true;
    }
    if (scaledDown) return this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
    if (this.oldPodsRunning(d, newRS, oldRSs)) return this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
    if (!newRS) {
      const got = this.getAllReplicaSetsAndSyncRevision(d, rsList, true);
      d = got.d;
      newRS = got.newRS;
      oldRSs = got.oldRSs;
    }
    if (newRS) newRS = this.scaleReplicaSet(d, newRS, desiredReplicas(d)).rs;
    if (deploymentComplete(d, objAt(d, 'status') ?? {})) this.cleanupDeployment(d, oldRSs);
    this.syncRolloutStatus(d, [...oldRSs, newRS], newRS);
  }

  private oldPodsRunning(d: KubeObject, newRS: RS | undefined, oldRSs: RS[]): boolean {
    if (sumStatus(oldRSs, 'replicas') > 0) return true;
    const oldUids = new Set(oldRSs.map((rs) => String(rs.metadata.uid)));
    const selector = objAt(dspec(d), 'selector') as LabelSelector | undefined;
    for (const pod of this.store.list('Pod', d.metadata.namespace ?? '').items) {
      const ref = controllerRef(pod);
      if (!ref || !oldUids.has(ref.uid) || ref.uid === newRS?.metadata.uid) continue;
      if (!selectorMatches(selector, labelsOf(pod))) continue;
      const phase = strAt(objAt(pod, 'status'), 'phase');
      if (phase === 'Failed' || phase === 'Succeeded') continue;
      return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Paused / scaling (sync.go: sync, scale)

  private syncScaleOnly(d0: KubeObject, rsList: RS[]): void {
    const { d, newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(d0, rsList, false);
    const updated = this.scale(d, newRS, oldRSs);
    const nRS = updated.find((rs) => rs.metadata.uid === newRS?.metadata.uid);
    const oRSs = updated.filter((rs) => rs.metadata.uid !== newRS?.metadata.uid);
    if (dspec(d).paused === true) this.cleanupDeployment(d, oRSs);
    this.syncDeploymentStatus(d, [...oRSs, nRS], nRS);
  }

  /** DeploymentController.scale: proportional scaling across active ReplicaSets. Returns the current RSs. */
  private scale(d: KubeObject, newRS: RS | undefined, oldRSs: RS[]): RS[] {
    let all = [...oldRSs, ...(newRS ? [newRS] : [])];
    const replace = (u: RS): void => {
      all = all.map((rs) => (rs.metadata.uid === u.metadata.uid ? u : rs));
    };
    const active = all.filter((rs) => rsReplicas(rs) > 0);
    // FindActiveOrLatest
    let activeOrLatest: RS | undefined;
    if (active.length === 1) activeOrLatest = active[0];
    else if (active.length === 0) activeOrLatest = newRS ?? this.byCreation(oldRSs).at(-1);
    if (activeOrLatest) {
      if (rsReplicas(activeOrLatest) !== desiredReplicas(d)) replace(this.scaleReplicaSet(d, activeOrLatest, desiredReplicas(d)).rs);
      return all;
    }
    // IsSaturated: the new RS is fully available → old ones go to zero.
    if (
      newRS &&
      rsReplicas(newRS) === desiredReplicas(d) &&
      Number(newRS.metadata.annotations?.[DESIRED_REPLICAS]) === desiredReplicas(d) &&
      rsStatusNum(newRS, 'availableReplicas') === desiredReplicas(d)
    ) {
      for (const rs of oldRSs) if (rsReplicas(rs) > 0) replace(this.scaleReplicaSet(d, rs, 0).rs);
      return all;
    }
    if (strategyType(d) !== 'RollingUpdate') return all;
    const allRSsReplicas = sumReplicas(active);
    const allowed = desiredReplicas(d) > 0 ? desiredReplicas(d) + maxSurge(d) : 0;
    const toAdd = allowed - allRSsReplicas;
    const order = this.byCreation(active);
    // ReplicaSetsBySizeNewer when adding, BySizeOlder when removing.
    const sorted =
      toAdd > 0
        ? [...order].reverse().sort((a, b) => rsReplicas(b) - rsReplicas(a))
        : [...order].sort((a, b) => rsReplicas(b) - rsReplicas(a));
    const sizes = new Map<RS, number>();
    let added = 0;
    for (const rs of sorted) {
      let proportion = 0;
      if (toAdd !== 0 && toAdd !== added && rsReplicas(rs) !== 0) {
        const fraction = this.replicaSetFraction(rs, d);
        const allowedLeft = toAdd - added;
        proportion = toAdd > 0 ? Math.min(fraction, allowedLeft) : Math.max(fraction, allowedLeft);
      }
      sizes.set(rs, rsReplicas(rs) + proportion);
      added += proportion;
    }
    sorted.forEach((rs, i) => {
      let size = sizes.get(rs) ?? rsReplicas(rs);
      if (i === 0 && toAdd !== 0) size = Math.max(0, size + toAdd - added);
      replace(this.scaleReplicaSet(d, rs, size).rs);
    });
    return all;
  }

  private replicaSetFraction(rs: RS, d: KubeObject): number {
    if (desiredReplicas(d) === 0) return -rsReplicas(rs);
    const deploymentReplicas = desiredReplicas(d) + maxSurge(d);
    const annotated = Number(rs.metadata.annotations?.[MAX_REPLICAS]);
    const base = Number.isFinite(annotated) && annotated > 0 ? annotated : (numAt(objAt(d, 'status'), 'replicas') ?? 0);
    if (base === 0) return 0;
    return Math.round((rsReplicas(rs) * deploymentReplicas) / base) - rsReplicas(rs);
  }

  // -------------------------------------------------------------------------------------------
  // status and progress (sync.go calculateStatus, progress.go syncRolloutStatus)

  private calculateStatus(d: KubeObject, allRSs: Array<RS | undefined>, newRS: RS | undefined): Obj {
    const prev = objAt(d, 'status') ?? {};
    const available = sumStatus(allRSs, 'availableReplicas');
    const total = sumReplicas(allRSs);
    const st: Obj = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sumStatus(allRSs, 'replicas'),
      updatedReplicas: rsStatusNum(newRS, 'replicas'),
      readyReplicas: sumStatus(allRSs, 'readyReplicas'),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, total - available),
    };
    if (prev.collisionCount !== undefined) st.collisionCount = prev.collisionCount;
    st.conditions = clonePlain(conditions(prev));
    if (available >= desiredReplicas(d) - maxUnavailable(d)) {
      setCondition(st, newCondition('Available', 'True', Reasons.MinimumReplicasAvailable, 'Deployment has minimum availability.'));
    } else {
      setCondition(st, newCondition('Available', 'False', Reasons.MinimumReplicasUnavailable, 'Deployment does not have minimum availability.'));
    }
    return st;
  }

  private syncDeploymentStatus(d: KubeObject, allRSs: Array<RS | undefined>, newRS: RS | undefined): void {
    const next = this.calculateStatus(d, allRSs, newRS);
    if (canonicalJson(objAt(d, 'status') ?? {}) === canonicalJson(next)) return;
    this.updateStatus(d, next);
  }

  private syncRolloutStatus(d: KubeObject, allRSs: Array<RS | undefined>, newRS: RS | undefined): void {
    const next = this.calculateStatus(d, allRSs, newRS);
    const deadline = progressDeadline(d);
    if (deadline === undefined) removeCondition(next, 'Progressing');
    const current = getCondition(objAt(d, 'status'), 'Progressing');
    const isComplete = next.replicas === next.updatedReplicas && current?.reason === Reasons.NewReplicaSetAvailable;
    if (deadline !== undefined && !isComplete) {
      const what = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${d.metadata.name}"`;
      if (deploymentComplete(d, next)) {
        setCondition(next, newCondition('Progressing', 'True', Reasons.NewReplicaSetAvailable, `${what} has successfully progressed.`));
      } else if (deploymentProgressing(d, next)) {
        const cond = newCondition('Progressing', 'True', Reasons.ReplicaSetUpdated, `${what} is progressing.`);
        if (current) {
          if (current.status === 'True' && current.lastTransitionTime) cond.lastTransitionTime = current.lastTransitionTime;
          removeCondition(next, 'Progressing');
        }
        setCondition(next, cond);
      } else if (this.timedOut(d, next)) {
        setCondition(next, newCondition('Progressing', 'False', Reasons.ProgressDeadlineExceeded, `${what} has timed out progressing.`));
      }
    }
    if (canonicalJson(objAt(d, 'status') ?? {}) !== canonicalJson(next)) d = this.updateStatus(d, next);
    this.requeueStuckDeployment(d, next);
  }

  /** deploymentutil.DeploymentTimedOut, with the deadline in simulated seconds. */
  private timedOut(d: KubeObject, st: Obj): boolean {
    const deadline = progressDeadline(d);
    if (deadline === undefined) return false;
    const cond = getCondition(st, 'Progressing');
    if (!cond) return false;
    if (cond.reason === Reasons.NewReplicaSetAvailable) return false;
    if (cond.reason === Reasons.ProgressDeadlineExceeded) return true;
    const from = parseTime(cond.lastUpdateTime);
    if (from === undefined) return false;
    return from + this.clock.ms(deadline) < Date.now();
  }

  private requeueStuckDeployment(d: KubeObject, st: Obj): void {
    const deadline = progressDeadline(d);
    const cond = getCondition(st, 'Progressing');
    if (deadline === undefined || !cond) return;
    if (cond.reason === Reasons.NewReplicaSetAvailable || cond.reason === Reasons.ProgressDeadlineExceeded) return;
    if (cond.status !== 'True') return;
    const from = parseTime(cond.lastUpdateTime);
    if (from === undefined) return;
    const remainingMs = from + this.clock.ms(deadline) - Date.now();
    this.queue.addAfter(keyOf(d), Math.max(0, this.clock.simulatedSeconds(remainingMs + 5)));
  }

  /** cleanupDeployment: keep revisionHistoryLimit old ReplicaSets; delete only fully scaled-down ones. */
  private cleanupDeployment(d: KubeObject, oldRSs: RS[]): void {
    const limit = numAt(dspec(d), 'revisionHistoryLimit') ?? 10;
    const cleanable = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp);
    const diff = cleanable.length - limit;
    if (diff <= 0) return;
    const byRevision = [...cleanable].sort((a, b) => revisionOf(a) - revisionOf(b) || a.metadata.name.localeCompare(b.metadata.name));
    for (let i = 0; i < diff; i++) {
      const rs = byRevision[i] as RS;
      if (rsStatusNum(rs, 'replicas') !== 0 || rsReplicas(rs) !== 0) continue;
      if (Number(rs.metadata.generation ?? 1) > rsStatusNum(rs, 'observedGeneration')) continue;
      try {
        this.store.delete('ReplicaSet', rs.metadata.namespace ?? '', rs.metadata.name);
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
  }
}

/** deploymentutil.SetNewReplicaSetAnnotations. Returns whether anything changed. */
function setNewReplicaSetAnnotations(d: KubeObject, rs: RS, newRevision: string, exists: boolean): boolean {
  const annotations: Record<string, string> = { ...(rs.metadata.annotations ?? {}) };
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (ANNOTATIONS_NOT_COPIED.has(k) || annotations[k] === v) continue;
    annotations[k] = v;
    changed = true;
  }
  const hadRevision = Object.prototype.hasOwnProperty.call(annotations, REVISION);
  const oldRevision = annotations[REVISION] ?? '';
  const oldInt = Number.parseInt(oldRevision, 10);
  const oldNum = Number.isFinite(oldInt) ? oldInt : 0;
  const newNum = Number.parseInt(newRevision, 10);
  if (oldNum < newNum) {
    annotations[REVISION] = newRevision;
    changed = true;
  }
  if (hadRevision && oldNum < newNum) {
    const history = annotations[REVISION_HISTORY] ?? '';
    if (history === '') {
      annotations[REVISION_HISTORY] = oldRevision;
    } else {
      let parts = history.split(',');
      let total = history.length + oldRevision.length + 1;
      while (total > REV_HISTORY_LIMIT_CHARS && parts.length > 0) {
        total -= (parts[0] as string).length + 1;
        parts = parts.slice(1);
      }
      if (total <= REV_HISTORY_LIMIT_CHARS) annotations[REVISION_HISTORY] = [...parts, oldRevision].join(',');
    }
  }
  if (!exists) {
    const desired = String(desiredReplicas(d));
    const max = String(desiredReplicas(d) + maxSurge(d));
    if (annotations[DESIRED_REPLICAS] !== desired || annotations[MAX_REPLICAS] !== max) {
      annotations[DESIRED_REPLICAS] = desired;
      annotations[MAX_REPLICAS] = max;
      changed = true;
    }
  }
  rs.metadata.annotations = annotations;
  return changed;
}
