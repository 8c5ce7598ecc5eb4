import { createHash } from 'node:crypto';
import type { TargetHealth } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { AwsAccount } from '../aws/account.js';
import type { ClusterAccess } from '../cluster.js';
import type { StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { GATE_PREFIX, LEGACY_GATE_PREFIX, TGB_FINALIZER, gateConditionType } from './annotations.js';
import { EventRecorder, LbcAwsError, WorkQueue, a, callElbv2, isNotFound, nowIso, o, s, type ReconcileResult } from './util.js';

/**
 * The TargetGroupBinding controller (ip targets), after pkg/targetgroupbinding/resource_manager.go:
 * endpoints from EndpointSlices (§3.1 of the reference), targets from DescribeTargetHealth (with LBC's 5-minute
 * cache in which healthy targets are not re-described), DeregisterTargets first and RegisterTargets second,
 * readiness-gate conditions on gated pods, a checkpoint skip, and a requeue while any gate is not True.
 * Instance targets are not emulated (the lab has no nodes): such TGBs are acknowledged and left alone.
 */

const CACHE_TTL_SECONDS = 300;
const CHECKPOINT = 'elbv2.k8s.aws/checkpoint';
const CHECKPOINT_TS = 'elbv2.k8s.aws/checkpoint-timestamp';

interface Endpoint {
  ip: string;
  port: number;
  pod: KubeObject;
}

interface CachedTarget {
  id: string;
  port: number;
  health?: TargetHealth;
}

interface TargetsCache {
  expiresAt: number;
  targets: Map<string, CachedTarget>;
}

export class TgbController {
  readonly queue: WorkQueue;
  private readonly events: EventRecorder;
  private readonly cache = new Map<string, TargetsCache>();
  private readonly generations = new Map<string, number>();
  private readonly podInfo = new Map<string, string>();
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly store: ClusterAccess,
    private readonly clock: LabClock,
    private readonly account: AwsAccount,
  ) {
    this.events = new EventRecorder(store, 'targetGroupBinding');
    this.queue = new WorkQueue(clock, (key) => this.reconcile(key), (key, err) => this.failed(key, err));
  }

  start(): void {
    this.unwatch.push(
      this.store.watch('TargetGroupBinding', undefined, undefined, (e) => this.onTgb(e)),
      this.store.watch('EndpointSlice', undefined, undefined, (e) => this.onSlice(e)),
      this.store.watch('Service', undefined, undefined, (e) => this.onService(e)),
      this.store.watch('Pod', undefined, undefined, (e) => this.onPod(e)),
    );
    for (const tgb of this.store.list('TargetGroupBinding').items) this.enqueue(tgb.metadata.namespace ?? '', tgb.metadata.name);
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch.splice(0)) u();
    await this.queue.stop();
  }

  private enqueue(ns: string, name: string): void {
    this.queue.enqueue(`${ns}/${name}`, this.clock.delay('lbcReconcileSeconds'));
  }

  private onTgb(e: StoreEvent): void {
    const key = `${e.object.metadata.namespace ?? ''}/${e.object.metadata.name}`;
    if (e.type === 'DELETED') {
      this.generations.delete(key);
      this.queue.forget(key);
      return;
    }
    const gen = Number(e.object.metadata.generation ?? 1);
    const fin = (e.object.metadata.finalizers as string[] | undefined) ?? [];
    // Only spec changes, deletion, or a missing finalizer need a reconcile (our own annotation/status writes do not).
    if (e.type === 'ADDED' || this.generations.get(key) !== gen || e.object.metadata.deletionTimestamp || !fin.includes(TGB_FINALIZER)) {
      this.generations.set(key, gen);
      this.enqueue(e.object.metadata.namespace ?? '', e.object.metadata.name);
    }
  }

  private tgbsForService(ns: string, svcName: string): KubeObject[] {
    return this.store.list('TargetGroupBinding', ns).items.filter((t) => s(o(o(t.spec).serviceRef).name) === svcName);
  }

  private onSlice(e: StoreEvent): void {
    const svc = e.object.metadata.labels?.['kubernetes.io/service-name'];
    if (!svc) return;
    const ns = e.object.metadata.namespace ?? '';
    for (const t of this.tgbsForService(ns, svc)) if (s(o(t.spec).targetType) === 'ip') this.enqueue(ns, t.metadata.name);
  }

  private onService(e: StoreEvent): void {
    const ns = e.object.metadata.namespace ?? '';
    for (const t of this.tgbsForService(ns, e.object.metadata.name)) this.enqueue(ns, t.metadata.name);
  }

  private onPod(e: StoreEvent): void {
    const ns = e.object.metadata.namespace ?? '';
    const key = `${ns}/${e.object.metadata.name}`;
    if (e.type === 'DELETED') {
      this.podInfo.delete(key);
    }
    const gates = a(o(e.object.spec).readinessGates)
      .map((g) => s(o(g).conditionType))
      .filter((c) => c.startsWith(`${GATE_PREFIX}/`) || c.startsWith(`${LEGACY_GATE_PREFIX}/`));
    if (gates.length === 0) return;
    // PodInfo without our own gate conditions: their writes must not retrigger us.
    const status = o(e.object.status);
    const info = JSON.stringify({
      ip: status.podIP,
      del: e.object.metadata.deletionTimestamp,
      gates,
      conds: a(status.conditions)
        .map((c) => o(c))
        .filter((c) => !s(c.type).startsWith(GATE_PREFIX))
        .map((c) => [c.type, c.status]),
    });
    if (e.type !== 'DELETED') {
      if (this.podInfo.get(key) === info) return;
      this.podInfo.set(key, info);
    }
    for (const g of gates) this.enqueue(ns, g.slice(g.indexOf('/') + 1));
  }

  private failed(key: string, err: unknown): void {
    const [ns, name] = key.split('/') as [string, string];
    const tgb = this.store.get('TargetGroupBinding', ns, name);
    if (tgb) this.events.record(tgb, 'Warning', 'FailedReconcile', `Failed reconcile due to ${(err as Error).message}`);
  }

  // ------------------------------------------------------------------ reconcile

  async reconcile(key: string): Promise<ReconcileResult> {
    const [ns, name] = key.split('/') as [string, string];
    const tgb = this.store.get('TargetGroupBinding', ns, name);
    if (!tgb) return;
    const spec = o(tgb.spec);
    const fin = (tgb.metadata.finalizers as string[] | undefined) ?? [];
    if (tgb.metadata.deletionTimestamp) {
      if (!fin.includes(TGB_FINALIZER)) return;
      await this.cleanup(tgb);
      this.store.mutate('TargetGroupBinding', ns, name, (t) => {
        t.metadata.finalizers = ((t.metadata.finalizers as string[] | undefined) ?? []).filter((f) => f !== TGB_FINALIZER);
      });
      return;
    }
    if (!fin.includes(TGB_FINALIZER)) {
      this.store.mutate('TargetGroupBinding', ns, name, (t) => {
        t.metadata.finalizers = [...((t.metadata.finalizers as string[] | undefined) ?? []), TGB_FINALIZER];
      });
    }
    const tgArn = s(spec.targetGroupARN);
    if (!tgArn) throw new Error(`TargetGroupBinding ${key} has no spec.targetGroupARN (the lab resolves no targetGroupName)`);
    if (s(spec.targetType) !== 'ip') {
      this.setObservedGeneration(tgb);
      return;
    }

    const svcName = s(o(spec.serviceRef).name);
    const svc = this.store.get('Service', ns, svcName);
    if (!svc) {
      this.events.record(tgb, 'Warning', 'BackendNotFound', `services "${svcName}" not found`);
      await this.cleanup(tgb);
      return;
    }
    const refPort = o(spec.serviceRef).port;
    const svcPort = a(o(svc.spec).ports)
      .map((p) => o(p))
      .find((p) => (typeof refPort === 'number' ? p.port === refPort : s(p.name) === s(refPort) || String(p.port) === s(refPort)));
    if (!svcPort) {
      this.events.record(tgb, 'Warning', 'BackendNotFound', `unable to find port ${s(refPort)} on service ${ns}/${svcName}`);
      await this.cleanup(tgb);
      return;
    }

    const endpoints = this.resolveEndpoints(ns, svcName, svcPort);
    const condType = gateConditionType(name);
    // Each endpoint with its pod's creation time, as LBC's PodEndpoint.GetIdentifier(includeTimestamp): a new pod on
    // a reused IP:port (the VPC CNI reuses released IPs) changes the checkpoint, so its gate is reconciled.
    const checkpoint = `${sha256(endpoints.map((e) => `${e.ip}:${e.port}:${creationMs(e.pod)}`).sort().join(','))}/${sha256(JSON.stringify(spec))}`;
    const pendingGate = endpoints.some((e) => {
      const c = podCondition(e.pod, condType);
      return c !== undefined && s(c.status) !== 'True';
    });
    if (tgb.metadata.annotations?.[CHECKPOINT] === checkpoint && !pendingGate) return; // "Skipping targetgroupbinding reconcile"
    if (tgb.metadata.annotations?.[CHECKPOINT]) {
      this.store.mutate('TargetGroupBinding', ns, name, (t) => {
        t.metadata.annotations = { ...(t.metadata.annotations ?? {}), [CHECKPOINT]: '' };
      });
    }

    const targets = (await this.listTargets(tgArn)).filter((t) => t.health?.State !== 'draining' && t.health?.State !== 'unhealthy.draining');
    const endpointKeys = new Set(endpoints.map((e) => `${e.ip}:${e.port}`));
    const targetKeys = new Map(targets.map((t) => [`${t.id}:${t.port}`, t]));
    const unmatchedTargets = targets.filter((t) => !endpointKeys.has(`${t.id}:${t.port}`));
    const unmatchedEndpoints = endpoints.filter((e) => !targetKeys.has(`${e.ip}:${e.port}`));
    if (unmatchedTargets.length > 0) await this.deregister(tgArn, unmatchedTargets.map((t) => ({ id: t.id, port: t.port })));
    if (unmatchedEndpoints.length > 0) await this.register(tgArn, unmatchedEndpoints.map((e) => ({ id: e.ip, port: e.port })));

    let needFurtherProbe = false;
    const synthetic: TargetHealth = { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' };
    for (const e of endpoints) {
      const t = targetKeys.get(`${e.ip}:${e.port}`);
      const health = t ? t.health : synthetic;
      const status = await this.updatePodCondition(e.pod, condType, health);
      if (status !== undefined && status !== 'True') needFurtherProbe = true;
    }
    this.store.mutate('TargetGroupBinding', ns, name, (t) => {
      t.metadata.annotations = { ...(t.metadata.annotations ?? {}), [CHECKPOINT]: checkpoint, [CHECKPOINT_TS]: String(Math.floor(Date.now() / 1000)) };
    });
    this.setObservedGeneration(tgb);
    this.events.record(tgb, 'Normal', 'SuccessfullyReconciled', 'Successfully reconciled');
    if (needFurtherProbe) return { requeueAfterSeconds: this.clock.timings.lbcRequeueSeconds };
  }

  private setObservedGeneration(tgb: KubeObject): void {
    const gen = Number(tgb.metadata.generation ?? 1);
    if (Number(o(tgb.status).observedGeneration) === gen) return;
    this.store.mutate('TargetGroupBinding', tgb.metadata.namespace ?? '', tgb.metadata.name, (t) => {
      t.status = { ...o(t.status), observedGeneration: gen };
    }, 'status');
  }

  /** EndpointSlice endpoints per reference §3.1 (node assumed Ready: the lab has no node failures). */
  private resolveEndpoints(ns: string, svcName: string, svcPort: JsonObject): Endpoint[] {
    const out = new Map<string, Endpoint>();
    const portName = s(svcPort.name);
    for (const slice of this.store.list('EndpointSlice', ns).items) {
      if (slice.metadata.labels?.['kubernetes.io/service-name'] !== svcName) continue;
      if ((s(slice.addressType as never) || 'IPv4') !== 'IPv4') continue;
      const port = a(slice.ports)
        .map((p) => o(p))
        .find((p) => s(p.name) === portName);
      if (!port || typeof port.port !== 'number') continue;
      for (const epv of a(slice.endpoints)) {
        const ep = o(epv);
        const ref = o(ep.targetRef);
        if (s(ref.kind) !== 'Pod') continue;
        const pod = this.store.get('Pod', s(ref.namespace) || ns, s(ref.name));
        if (!pod) continue; // "the pod in endpoint is not found in pod cache yet"
        const cond = o(ep.conditions);
        const ready = cond.ready;
        let include = ready === undefined || ready === null || ready === true;
        if (!include) {
          const containersReady = a(o(pod.status).conditions).some((c) => s(o(c).type) === 'ContainersReady' && s(o(c).status) === 'True');
          include = containersReady && cond.terminating !== true;
        }
        if (!include) continue;
        for (const addr of a(ep.addresses)) out.set(`${s(addr)}:${port.port}`, { ip: s(addr), port: port.port, pod });
      }
    }
    return [...out.values()];
  }

  /** LBC's targets cache: a full listing on miss/expiry; otherwise only non-healthy cached targets are re-described. */
  private async listTargets(tgArn: string): Promise<CachedTarget[]> {
    let c = this.cache.get(tgArn);
    if (!c || c.expiresAt <= Date.now()) {
      const out = await callElbv2(this.account, this.clock, 'DescribeTargetHealth', { TargetGroupArn: tgArn });
      c = { expiresAt: Date.now() + this.clock.ms(CACHE_TTL_SECONDS), targets: new Map() };
      for (const d of out.TargetHealthDescriptions ?? []) {
        const id = d.Target?.Id ?? '';
        const port = Number(d.Target?.Port ?? 0);
        c.targets.set(`${id}:${port}`, { id, port, ...(d.TargetHealth ? { health: d.TargetHealth } : {}) });
      }
      this.cache.set(tgArn, c);
    } else {
      const stale = [...c.targets.values()].filter((t) => t.health?.State !== 'healthy');
      if (stale.length > 0) {
        const out = await callElbv2(this.account, this.clock, 'DescribeTargetHealth', { TargetGroupArn: tgArn, Targets: stale.map((t) => ({ Id: t.id, Port: t.port })) });
        for (const d of out.TargetHealthDescriptions ?? []) {
          const k = `${d.Target?.Id ?? ''}:${Number(d.Target?.Port ?? 0)}`;
          const t = c.targets.get(k);
          if (!t) continue;
          if (d.TargetHealth?.State === 'unused' && d.TargetHealth.Reason === 'Target.NotRegistered') c.targets.delete(k);
          else if (d.TargetHealth) t.health = d.TargetHealth;
        }
      }
    }
    return [...c.targets.values()];
  }

  private async register(tgArn: string, targets: Array<{ id: string; port: number }>): Promise<void> {
    for (let i = 0; i < targets.length; i += 200) {
      const chunk = targets.slice(i, i + 200);
      await callElbv2(this.account, this.clock, 'RegisterTargets', { TargetGroupArn: tgArn, Targets: chunk.map((t) => ({ Id: t.id, Port: t.port })) });
      const c = this.cache.get(tgArn);
      if (c) for (const t of chunk) c.targets.set(`${t.id}:${t.port}`, { id: t.id, port: t.port });
    }
  }

  private async deregister(tgArn: string, targets: Array<{ id: string; port: number }>): Promise<void> {
    for (let i = 0; i < targets.length; i += 200) {
      const chunk = targets.slice(i, i + 200);
      await callElbv2(this.account, this.clock, 'DeregisterTargets', { TargetGroupArn: tgArn, Targets: chunk.map((t) => ({ Id: t.id, Port: t.port })) });
      const c = this.cache.get(tgArn);
      if (c) for (const t of chunk) c.targets.set(`${t.id}:${t.port}`, { id: t.id, port: t.port });
    }
  }

  /** Writes the gate condition through the status subresource; returns the status, or undefined for ungated pods. */
  private async updatePodCondition(pod: KubeObject, condType: string, health: TargetHealth | undefined, messageOverride?: string): Promise<string | undefined> {
    if (!a(o(pod.spec).readinessGates).some((g) => s(o(g).conditionType) === condType)) return undefined;
    const status = health === undefined ? 'Unknown' : health.State === 'healthy' ? 'True' : 'False';
    const reason = health?.Reason ?? '';
    const message = messageOverride ?? health?.Description ?? '';
    const ns = pod.metadata.namespace ?? '';
    try {
      this.store.mutate(
        'Pod',
        ns,
        pod.metadata.name,
        (p) => {
          if (p.metadata.uid !== pod.metadata.uid) return; // UID precondition
          const st = o(p.status);
          const conds = a(st.conditions).map((c) => o(c));
          const existing = conds.find((c) => s(c.type) === condType);
          if (existing && s(existing.status) === status && s(existing.reason) === reason && s(existing.message) === message) return;
          const cond: JsonObject = {
            type: condType,
            status,
            lastProbeTime: null,
            lastTransitionTime: existing && s(existing.status) === status ? s(existing.lastTransitionTime) : nowIso(),
            ...(reason ? { reason } : {}),
            ...(message ? { message } : {}),
          };
          st.conditions = existing ? conds.map((c) => (c === existing ? cond : c)) : [...conds, cond];
          p.status = st;
        },
        'status',
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    return status;
  }

  /** Deregisters every target and marks gated pods True "Target Group Binding is deleted". */
  private async cleanup(tgb: KubeObject): Promise<void> {
    const tgArn = s(o(tgb.spec).targetGroupARN);
    if (tgArn && s(o(tgb.spec).targetType) === 'ip') {
      try {
        const out = await callElbv2(this.account, this.clock, 'DescribeTargetHealth', { TargetGroupArn: tgArn });
        const targets = (out.TargetHealthDescriptions ?? []).map((d) => ({ id: d.Target?.Id ?? '', port: Number(d.Target?.Port ?? 0) }));
        if (targets.length > 0) await this.deregister(tgArn, targets);
      } catch (e) {
        if (!(e instanceof LbcAwsError && e.code === 'TargetGroupNotFound')) throw e;
      }
      this.cache.delete(tgArn);
    }
    const condType = gateConditionType(tgb.metadata.name);
    for (const pod of this.store.list('Pod', tgb.metadata.namespace ?? '').items) {
      await this.updatePodCondition(pod, condType, { State: 'healthy' }, 'Target Group Binding is deleted');
    }
  }
}

function podCondition(pod: KubeObject, type: string): JsonObject | undefined {
  return a(o(pod.status).conditions)
    .map((c) => o(c))
    .find((c) => s(c.type) === type);
}

/** The pod's creationTimestamp in milliseconds since the epoch (0 when unset or unreadable). */
function creationMs(pod: KubeObject): number {
  const ts = pod.metadata.creationTimestamp;
  const t = typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

function sha256(v: string): string {
  return createHash('sha256').update(v).digest('hex');
}
