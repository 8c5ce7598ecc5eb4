import type { Action, RuleCondition } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { lbcResourceName } from '../alb/names.js';
import type { AwsAccount, Elbv2Action, Elbv2Input, Elbv2Output } from '../aws/account.js';
import type { ObjectStore, StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { BuildModelError, INGRESS_FINALIZER, TGB_FINALIZER, intAnnotation, isAlbIngress, mergedAnnotation, parseStringMap, ANN } from './annotations.js';
import { EventRecorder, LbcAwsError, WorkQueue, a, callElbv2, o, s, type ReconcileResult } from './util.js';

/**
 * The Ingress controller of LBC for implicit IngressGroups (one Ingress = one ALB; `group.name` is not emulated):
 * build the model (target groups per (Service, port) backend, health checks and attributes from annotations,
 * listener rules from paths), deploy it in LBC's order (TargetGroups → LoadBalancer → Listener → Rules → TGBs,
 * then stale TGBs and TGs), write the Ingress status hostname, and clean everything up on deletion.
 * Every AWS call goes through the account gateway (see src/lab/aws/account.ts).
 */

interface TgModel {
  resourceId: string;
  name: string;
  svcName: string;
  namespace: string;
  backendPort: number | string;
  targetType: 'ip' | 'instance';
  tgPort: number;
  hc: { path: string; port: string; interval: number; timeout: number; healthy: number; unhealthy: number; codes: string };
  attributes?: Record<string, string>;
}

interface RuleModel {
  host?: string;
  paths: string[];
  tg: string;
}

interface StackModel {
  lbName: string;
  scheme: string;
  tgs: Map<string, TgModel>;
  rules: RuleModel[];
  defaultTg?: string;
}

const TGB_API = 'elbv2.k8s.aws/v1beta1';

export class IngressController {
  readonly queue: WorkQueue;
  private readonly events: EventRecorder;
  private readonly fingerprints = new Map<string, string>();
  private readonly stackTgs = new Map<string, Set<string>>();
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly clock: LabClock,
    private readonly account: AwsAccount,
    private readonly clusterName: string,
  ) {
    this.events = new EventRecorder(store, 'ingress');
    this.queue = new WorkQueue(clock, (key) => this.reconcile(key));
  }

  start(): void {
    this.unwatch.push(
      this.store.watch('Ingress', undefined, undefined, (e) => this.onIngress(e)),
      this.store.watch('Service', undefined, undefined, (e) => this.onService(e)),
      this.store.watch('IngressClass', undefined, undefined, () => {
        for (const ing of this.store.list('Ingress').items) this.enqueue(ing);
      }),
    );
    for (const ing of this.store.list('Ingress').items) this.enqueue(ing);
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch.splice(0)) u();
    await this.queue.stop();
  }

  private enqueue(ing: KubeObject): void {
    this.queue.enqueue(`${ing.metadata.namespace ?? ''}/${ing.metadata.name}`, this.clock.delay('lbcIngressReconcileSeconds'));
  }

  private onIngress(e: StoreEvent): void {
    const key = `${e.object.metadata.namespace ?? ''}/${e.object.metadata.name}`;
    if (e.type === 'DELETED') {
      this.fingerprints.delete(key);
      return;
    }
    const fp = JSON.stringify([e.object.spec, e.object.metadata.annotations, e.object.metadata.deletionTimestamp ?? null, e.object.metadata.uid]);
    if (this.fingerprints.get(key) === fp) return;
    this.fingerprints.set(key, fp);
    this.enqueue(e.object);
  }

  private onService(e: StoreEvent): void {
    const ns = e.object.metadata.namespace ?? '';
    const key = `Service/${ns}/${e.object.metadata.name}`;
    if (e.type === 'DELETED') this.fingerprints.delete(key);
    else {
      // Only what the model reads (spec, annotations, uid): status-only writes do not trigger a reconcile.
      const fp = JSON.stringify([e.object.spec, e.object.metadata.annotations, e.object.metadata.uid]);
      if (this.fingerprints.get(key) === fp) return;
      this.fingerprints.set(key, fp);
    }
    for (const ing of this.store.list('Ingress', ns).items) {
      if (backendServices(ing).includes(e.object.metadata.name)) this.queue.enqueue(`${ns}/${ing.metadata.name}`, this.clock.delay('lbcIngressReconcileSeconds'));
    }
  }

  // ------------------------------------------------------------------ reconcile

  async reconcile(key: string): Promise<ReconcileResult> {
    const [ns, name] = key.split('/') as [string, string];
    const ing = this.store.get('Ingress', ns, name);
    if (!ing) return;
    const finalizers = (ing.metadata.finalizers as string[] | undefined) ?? [];
    const ours = isAlbIngress(this.store, ing);
    if (ing.metadata.deletionTimestamp || !ours) {
      if (!finalizers.includes(INGRESS_FINALIZER)) return;
      const pending = await this.cleanupStack(ing);
      if (pending) return { requeueAfterSeconds: this.clock.delay('lbcReconcileSeconds') };
      this.store.mutate('Ingress', ns, name, (i) => {
        i.metadata.finalizers = ((i.metadata.finalizers as string[] | undefined) ?? []).filter((f) => f !== INGRESS_FINALIZER);
      });
      return;
    }
    if (!finalizers.includes(INGRESS_FINALIZER)) {
      this.store.mutate('Ingress', ns, name, (i) => {
        i.metadata.finalizers = [...((i.metadata.finalizers as string[] | undefined) ?? []), INGRESS_FINALIZER];
      });
    }
    let model: StackModel;
    try {
      model = this.buildModel(ing);
    } catch (e) {
      if (!(e instanceof BuildModelError)) throw e;
      this.events.record(ing, 'Warning', 'FailedBuildModel', `Failed build model due to ${e.message}`);
      return;
    }
    let dnsName: string;
    try {
      dnsName = await this.deploy(ing, model);
    } catch (e) {
      this.events.record(ing, 'Warning', 'FailedDeployModel', `Failed deploy model due to ${(e as Error).message}`);
      throw e;
    }
    const wanted = [{ hostname: dnsName.toLowerCase(), ports: [{ port: 80, protocol: 'TCP' }] }];
    if (JSON.stringify(o(o(ing.status).loadBalancer).ingress ?? null) !== JSON.stringify(wanted)) {
      this.store.mutate('Ingress', ns, name, (i) => {
        i.status = { ...o(i.status), loadBalancer: { ingress: wanted } };
      }, 'status');
    }
    this.events.record(ing, 'Normal', 'SuccessfullyReconciled', 'Successfully reconciled');
  }

  private buildModel(ing: KubeObject): StackModel {
    const ns = ing.metadata.namespace ?? 'default';
    const groupId = `${ns}/${ing.metadata.name}`;
    const spec = o(ing.spec);
    const scheme = ing.metadata.annotations?.[`${ANN}scheme`] ?? 'internal';
    if (scheme !== 'internal' && scheme !== 'internet-facing') throw new BuildModelError(`unknown scheme: ${scheme}`);
    const tgs = new Map<string, TgModel>();
    const tgFor = (backend: JsonObject): string => {
      const svcRef = o(backend.service);
      const svcName = s(svcRef.name);
      if (!svcName) throw new BuildModelError(`missing service backend in Ingress ${groupId}`);
      const portRef = o(svcRef.port);
      const backendPort: number | string = typeof portRef.number === 'number' ? portRef.number : s(portRef.name);
      const resourceId = `${groupId}-${svcName}:${String(backendPort)}`;
      const known = tgs.get(resourceId);
      if (known) return resourceId;
      const svc = this.store.get('Service', ns, svcName);
      if (!svc) throw new BuildModelError(`services "${svcName}" not found`);
      const svcSpec = o(svc.spec);
      const svcPort = a(svcSpec.ports)
        .map((p) => o(p))
        .find((p) => (typeof backendPort === 'number' ? p.port === backendPort : s(p.name) === backendPort));
      if (!svcPort) throw new BuildModelError(`unable to find port ${String(backendPort)} on service ${ns}/${svcName}`);
      const targetType = mergedAnnotation(svc, ing, 'target-type') ?? 'instance';
      if (targetType !== 'ip' && targetType !== 'instance') throw new BuildModelError(`unknown targetType: ${targetType}`);
      let tgPort: number;
      if (targetType === 'instance') {
        const type = s(svcSpec.type) || 'ClusterIP';
        if (type !== 'NodePort' && type !== 'LoadBalancer') throw new BuildModelError(`service type must be either 'NodePort' or 'LoadBalancer'`);
        tgPort = Number(svcPort.nodePort ?? 0) || 1;
      } else {
        const tp: JsonValue | undefined = svcPort.targetPort;
        tgPort = typeof tp === 'number' ? tp : typeof tp === 'string' && tp !== '' ? (/^\d+$/.test(tp) ? Number(tp) : 1) : Number(svcPort.port);
      }
      const rawAttrs = mergedAnnotation(svc, ing, 'target-group-attributes');
      const attributes = rawAttrs !== undefined ? parseStringMap(`${ANN}target-group-attributes`, rawAttrs) : undefined;
      const hc = {
        path: mergedAnnotation(svc, ing, 'healthcheck-path') ?? '/',
        port: mergedAnnotation(svc, ing, 'healthcheck-port') ?? 'traffic-port',
        interval: intAnnotation(svc, ing, 'healthcheck-interval-seconds', 15),
        timeout: intAnnotation(svc, ing, 'healthcheck-timeout-seconds', 5),
        healthy: intAnnotation(svc, ing, 'healthy-threshold-count', 2),
        unhealthy: intAnnotation(svc, ing, 'unhealthy-threshold-count', 2),
        codes: mergedAnnotation(svc, ing, 'success-codes') ?? '200',
      };
      if (hc.port !== 'traffic-port' && !/^\d+$/.test(hc.port)) {
        const named = a(svcSpec.ports)
          .map((p) => o(p))
          .find((p) => s(p.name) === hc.port);
        if (!named) throw new BuildModelError(`failed to resolve healthcheck port ${hc.port} on service ${ns}/${svcName}`);
        const tp = named.targetPort;
        hc.port = String(typeof tp === 'number' ? tp : named.port);
      }
      const name = lbcResourceName(ns, svcName, [this.clusterName, groupId, ns, s(ing.metadata.name), s(svc.metadata.uid as JsonValue), String(backendPort), String(tgPort), targetType, 'HTTP', 'HTTP1']);
      tgs.set(resourceId, { resourceId, name, svcName, namespace: ns, backendPort, targetType, tgPort, hc, ...(attributes ? { attributes } : {}) });
      return resourceId;
    };
    const rules: RuleModel[] = [];
    for (const r of a(spec.rules)) {
      const rule = o(r);
      const host = s(rule.host) || undefined;
      for (const p of a(o(rule.http).paths)) {
        const path = o(p);
        const tg = tgFor(o(path.backend));
        rules.push({ ...(host ? { host } : {}), paths: pathPatterns(s(path.path), s(path.pathType)), tg });
      }
    }
    const defaultTg = spec.defaultBackend ? tgFor(o(spec.defaultBackend)) : undefined;
    const lbName = lbcResourceName(ns, ing.metadata.name, [this.clusterName, groupId, scheme]);
    return { lbName, scheme, tgs, rules, ...(defaultTg ? { defaultTg } : {}) };
  }

  private async deploy(ing: KubeObject, model: StackModel): Promise<string> {
    const ns = ing.metadata.namespace ?? 'default';
    const stack = `${ns}/${ing.metadata.name}`;
    const stackTags = [
      { Key: 'elbv2.k8s.aws/cluster', Value: this.clusterName },
      { Key: 'ingress.k8s.aws/stack', Value: stack },
    ];
    const call = <A extends Elbv2Action>(action: A, input: Elbv2Input<A>): Promise<Elbv2Output<A>> => callElbv2(this.account, this.clock, action, input);
    // 1. target groups (+ health check drift, + attributes: only keys in the annotation, never reset)
    const tgArns = new Map<string, string>();
    for (const tg of model.tgs.values()) {
      // The health-check settings as the annotations ask for them: sent on create, compared and sent again on drift.
      const healthCheck = {
        HealthCheckPort: tg.hc.port,
        HealthCheckPath: tg.hc.path,
        HealthCheckIntervalSeconds: tg.hc.interval,
        HealthCheckTimeoutSeconds: tg.hc.timeout,
        HealthyThresholdCount: tg.hc.healthy,
        UnhealthyThresholdCount: tg.hc.unhealthy,
        Matcher: { HttpCode: tg.hc.codes },
      };
      const out = await call('CreateTargetGroup', {
        Name: tg.name,
        Protocol: 'HTTP',
        ProtocolVersion: 'HTTP1',
        Port: tg.tgPort,
        TargetType: tg.targetType,
        IpAddressType: 'ipv4',
        HealthCheckProtocol: 'HTTP',
        ...healthCheck,
        Tags: [...stackTags, { Key: 'ingress.k8s.aws/resource', Value: tg.resourceId }],
      });
      const cur = out.TargetGroups![0]!;
      const arn = cur.TargetGroupArn!;
      tgArns.set(tg.resourceId, arn);
      if (
        cur.HealthCheckPath !== tg.hc.path ||
        cur.HealthCheckPort !== tg.hc.port ||
        cur.HealthCheckIntervalSeconds !== tg.hc.interval ||
        cur.HealthCheckTimeoutSeconds !== tg.hc.timeout ||
        cur.HealthyThresholdCount !== tg.hc.healthy ||
        cur.UnhealthyThresholdCount !== tg.hc.unhealthy ||
        cur.Matcher?.HttpCode !== tg.hc.codes
      ) {
        await call('ModifyTargetGroup', { TargetGroupArn: arn, ...healthCheck });
      }
      if (tg.attributes && Object.keys(tg.attributes).length > 0) {
        const current = await call('DescribeTargetGroupAttributes', { TargetGroupArn: arn });
        const have = new Map((current.Attributes ?? []).map((x) => [x.Key ?? '', x.Value ?? '']));
        const changes = Object.entries(tg.attributes).filter(([k, v]) => have.get(k) !== v);
        if (changes.length > 0) await call('ModifyTargetGroupAttributes', { TargetGroupArn: arn, Attributes: changes.map(([Key, Value]) => ({ Key, Value })) });
      }
    }
    const known = this.stackTgs.get(stack) ?? new Set<string>();
    for (const arn of tgArns.values()) known.add(arn);
    this.stackTgs.set(stack, known);

    // 2. load balancer, 3. listener, 4. rules
    const lbOut = await call('CreateLoadBalancer', {
      Name: model.lbName,
      Scheme: model.scheme as 'internal' | 'internet-facing',
      Type: 'application',
      IpAddressType: 'ipv4',
      Tags: [...stackTags, { Key: 'ingress.k8s.aws/resource', Value: 'LoadBalancer' }],
    });
    const lb = lbOut.LoadBalancers![0]!;
    const defaultActions: Action[] = model.defaultTg
      ? [{ Type: 'forward', TargetGroupArn: tgArns.get(model.defaultTg)!, Order: 1 }]
      : [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain' }, Order: 1 }];
    const listeners = await call('DescribeListeners', { LoadBalancerArn: lb.LoadBalancerArn! });
    let listener = listeners.Listeners?.find((l) => l.Port === 80);
    if (!listener) {
      listener = (await call('CreateListener', { LoadBalancerArn: lb.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: defaultActions, Tags: stackTags })).Listeners![0]!;
    } else if (JSON.stringify(listener.DefaultActions) !== JSON.stringify(defaultActions)) {
      await call('ModifyListener', { ListenerArn: listener.ListenerArn!, DefaultActions: defaultActions });
    }
    const desired = model.rules.map((r, i) => {
      const conditions: RuleCondition[] = [];
      if (r.host) conditions.push({ Field: 'host-header', HostHeaderConfig: { Values: [r.host] } });
      conditions.push({ Field: 'path-pattern', PathPatternConfig: { Values: r.paths } });
      const actions: Action[] = [{ Type: 'forward', TargetGroupArn: tgArns.get(r.tg)!, Order: 1 }];
      return { priority: i + 1, conditions, actions };
    });
    const existing = (await call('DescribeRules', { ListenerArn: listener.ListenerArn! })).Rules?.filter((r) => !r.IsDefault) ?? [];
    for (const r of existing) {
      if (!desired.some((d) => String(d.priority) === r.Priority)) await call('DeleteRule', { RuleArn: r.RuleArn! });
    }
    for (const d of desired) {
      const cur = existing.find((r) => r.Priority === String(d.priority));
      if (!cur) await call('CreateRule', { ListenerArn: listener.ListenerArn!, Priority: d.priority, Conditions: d.conditions, Actions: d.actions, Tags: stackTags });
      else if (JSON.stringify(canonicalConditions(cur.Conditions ?? [])) !== JSON.stringify(canonicalConditions(d.conditions)) || JSON.stringify(cur.Actions) !== JSON.stringify(d.actions)) {
        await call('ModifyRule', { RuleArn: cur.RuleArn!, Conditions: d.conditions, Actions: d.actions });
      }
    }

    // 5. TargetGroupBindings (named like their TG, in the Service's namespace)
    const labels = { 'ingress.k8s.aws/stack-namespace': ns, 'ingress.k8s.aws/stack-name': ing.metadata.name };
    const wantedTgbs = new Set<string>();
    for (const tg of model.tgs.values()) {
      wantedTgbs.add(`${tg.namespace}/${tg.name}`);
      const spec: JsonObject = {
        targetGroupARN: tgArns.get(tg.resourceId)!,
        targetType: tg.targetType,
        serviceRef: { name: tg.svcName, port: tg.backendPort },
        ipAddressType: 'ipv4',
      };
      const cur = this.store.get('TargetGroupBinding', tg.namespace, tg.name);
      if (!cur) {
        this.store.create('TargetGroupBinding', {
          apiVersion: TGB_API,
          kind: 'TargetGroupBinding',
          metadata: { name: tg.name, namespace: tg.namespace, labels, finalizers: [TGB_FINALIZER] },
          spec,
        });
      } else if (JSON.stringify(o(cur.spec).serviceRef) !== JSON.stringify(spec.serviceRef)) {
        this.store.mutate('TargetGroupBinding', tg.namespace, tg.name, (t) => {
          t.spec = { ...o(t.spec), serviceRef: spec.serviceRef ?? null };
        });
      }
    }

    // 6. stale TGBs, then their target groups
    for (const tgb of this.stackTgbs(ns, ing.metadata.name)) {
      if (wantedTgbs.has(`${tgb.metadata.namespace ?? ''}/${tgb.metadata.name}`)) continue;
      const arn = s(o(tgb.spec).targetGroupARN);
      if (!tgb.metadata.deletionTimestamp) this.store.delete('TargetGroupBinding', tgb.metadata.namespace ?? '', tgb.metadata.name);
      if (arn && ![...tgArns.values()].includes(arn)) {
        await this.deleteTargetGroup(arn);
        known.delete(arn);
      }
    }
    return lb.DNSName!;
  }

  private stackTgbs(ns: string, name: string): KubeObject[] {
    return this.store
      .list('TargetGroupBinding')
      .items.filter((t) => t.metadata.labels?.['ingress.k8s.aws/stack-namespace'] === ns && t.metadata.labels?.['ingress.k8s.aws/stack-name'] === name);
  }

  /** DeleteTargetGroup, retried every 2 s for up to 20 s while it is still in use (as LBC does). */
  private async deleteTargetGroup(arn: string): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await callElbv2(this.account, this.clock, 'DeleteTargetGroup', { TargetGroupArn: arn });
        return;
      } catch (e) {
        if (e instanceof LbcAwsError && e.code === 'ResourceInUse' && i < 10) {
          await this.clock.sleep(2);
          continue;
        }
        throw e;
      }
    }
  }

  /** Deletion: TGBs first (their controller deregisters and releases gates), then the ALB, then the TGs. Returns true while waiting. */
  private async cleanupStack(ing: KubeObject): Promise<boolean> {
    const ns = ing.metadata.namespace ?? 'default';
    const stack = `${ns}/${ing.metadata.name}`;
    const known = this.stackTgs.get(stack) ?? new Set<string>();
    const tgbs = this.stackTgbs(ns, ing.metadata.name);
    for (const tgb of tgbs) {
      const arn = s(o(tgb.spec).targetGroupARN);
      if (arn) known.add(arn);
      if (!tgb.metadata.deletionTimestamp) this.store.delete('TargetGroupBinding', tgb.metadata.namespace ?? '', tgb.metadata.name);
    }
    this.stackTgs.set(stack, known);
    if (this.stackTgbs(ns, ing.metadata.name).length > 0) return true;
    const scheme = ing.metadata.annotations?.[`${ANN}scheme`] ?? 'internal';
    const lbName = lbcResourceName(ns, ing.metadata.name, [this.clusterName, stack, scheme]);
    let lbArn: string | undefined;
    try {
      lbArn = (await callElbv2(this.account, this.clock, 'DescribeLoadBalancers', { Names: [lbName] })).LoadBalancers?.[0]?.LoadBalancerArn;
    } catch (e) {
      if (!(e instanceof LbcAwsError && e.code === 'LoadBalancerNotFound')) throw e;
    }
    if (lbArn) {
      const tgs = await callElbv2(this.account, this.clock, 'DescribeTargetGroups', { LoadBalancerArn: lbArn });
      for (const tg of tgs.TargetGroups ?? []) known.add(tg.TargetGroupArn!);
      await callElbv2(this.account, this.clock, 'DeleteLoadBalancer', { LoadBalancerArn: lbArn });
    }
    for (const arn of known) await this.deleteTargetGroup(arn);
    this.stackTgs.delete(stack);
    return false;
  }
}

/** LBC's path patterns per pathType: Exact → [p]; Prefix → ['/*'] for '/', else [p, p/*]; ImplementationSpecific → [p or '/*']. */
export function pathPatterns(path: string, pathType: string): string[] {
  if (pathType === 'Exact') return [path || '/'];
  if (pathType === 'Prefix') {
    if (path === '' || path === '/') return ['/*'];
    const p = path.replace(/\/+$/, '');
    return [p, `${p}/*`];
  }
  return [path || '/*'];
}

function canonicalConditions(cs: RuleCondition[]): Array<[string, string[]]> {
  return cs.map((c) => [String(c.Field), [...(c.PathPatternConfig?.Values ?? c.HostHeaderConfig?.Values ?? c.Values ?? [])]]);
}

export function backendServices(ing: KubeObject): string[] {
  const spec = o(ing.spec);
  const out = new Set<string>();
  const add = (b: JsonValue | undefined): void => {
    const n = s(o(o(b).service).name);
    if (n) out.add(n);
  };
  add(spec.defaultBackend);
  for (const r of a(spec.rules)) for (const p of a(o(o(r).http).paths)) add(o(p).backend);
  return [...out];
}
