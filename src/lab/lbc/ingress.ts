import type { Action, RuleCondition } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { lbcResourceName } from '../alb/names.js';
import type { AwsAccount, Elbv2Action, Elbv2Input, Elbv2Output } from '../aws/account.js';
import type { ClusterAccess } from '../cluster.js';
import type { StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { BuildModelError, TGB_FINALIZER, intAnnotation, mergedAnnotation, parseStringMap, ANN } from './annotations.js';
import { groupListeners, type ListenerModel } from './listeners.js';
import { groupFinalizer, groupLoadBalancerName, groupOf, groupStackLabels, groupsPendingFinalization, loadGroup } from './group.js';
import { EventRecorder, WorkQueue, a, callElbv2, deleteLoadBalancerAndTargetGroups, deleteReplacedLoadBalancer, deleteStackTgbs, deleteStaleTgbs, ensureTargetGroup, findStackLoadBalancer, isNotFound, o, s, type ReconcileResult } from './util.js';

/**
 * The Ingress controller of LBC, one reconcile per IngressGroup (see group.ts for how groups are loaded): build one
 * model from every member in group order (target groups per (Ingress, Service, port) backend — LBC's resource id
 * `<ns>/<ingress>-<svc>:<port>`, so two Ingresses of a group on one Service port get two target groups and two
 * TargetGroupBindings — health checks and attributes from annotations, listener rules from paths, numbered across the
 * members in order), deploy it in LBC's order (TargetGroups → LoadBalancer → Listener → Rules → TGBs, then stale TGBs
 * and TGs), write the ALB hostname into every member's status, remove the finalizer of members that left, and delete
 * everything when the group is empty. Every AWS call goes through the account gateway (see src/lab/aws/account.ts).
 *
 * Backends with `port.name: use-annotation` take their action from `alb.ingress.kubernetes.io/actions.<service>`
 * (see forwardAction: `forward` with weighted `targetGroups` by serviceName/servicePort, what Argo Rollouts' ALB
 * traffic routing writes); each Service port in it gets its target group and TargetGroupBinding.
 *
 * Listeners from listen-ports, certificate-arn and ssl-redirect (listeners.ts). Not emulated: ACM certificate
 * discovery, conditions annotations, other action types (fixed-response, redirect, targetGroupARN/Name tuples),
 * stickiness, IngressClassParams, the
 * merge of the other exclusive annotations (inbound-cidrs, ssl-policy…), LBC's rule optimizer. Build-model errors are
 * recorded as events and not retried until something changes (LBC retries with backoff, recording the event again).
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

/** Where a rule forwards: one target group (a plain backend) or weighted ones (an `actions.*` annotation). */
interface ForwardTarget {
  tg: string;
  weight?: number;
}

interface RuleModel {
  /** The member (`ns/name`) it comes from: its rules go on the listeners it listens on. */
  member: string;
  host?: string;
  paths: string[];
  targets: ForwardTarget[];
  /** `alb.ingress.kubernetes.io/conditions.<service>` of a use-annotation backend (http-header only in the lab). */
  conditions?: RuleCondition[];
}

interface StackModel {
  lbName: string;
  scheme: string;
  tgs: Map<string, TgModel>;
  rules: RuleModel[];
  defaultTargets?: ForwardTarget[];
  listeners: ListenerModel[];
}

const TGB_API = 'elbv2.k8s.aws/v1beta1';

export class IngressController {
  readonly queue: WorkQueue;
  private readonly events: EventRecorder;
  private readonly fingerprints = new Map<string, string>();
  private readonly stackTgs = new Map<string, Set<string>>();
  private readonly stackLbs = new Map<string, string>();
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly store: ClusterAccess,
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

  /** Enqueues the group an Ingress is in and every group it still holds a finalizer of (it may have left them). */
  private enqueue(ing: KubeObject): void {
    const keys = new Set(groupsPendingFinalization(ing));
    const g = groupOf(this.store, ing);
    if (typeof g === 'string') keys.add(g);
    for (const k of keys) this.queue.enqueue(k, this.clock.delay('lbcIngressReconcileSeconds'));
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
      if (backendServices(ing).includes(e.object.metadata.name)) this.enqueue(ing);
    }
  }

  // ------------------------------------------------------------------ reconcile

  /** Reconciles one IngressGroup (key: the group name, or `<namespace>/<name>` for an implicit group). */
  async reconcile(key: string): Promise<ReconcileResult> {
    const group = loadGroup(this.store, key); // a GroupLoadError is retried with backoff, as LBC does
    const finalizer = groupFinalizer(key);
    for (const m of group.members) {
      if (((m.metadata.finalizers as string[] | undefined) ?? []).includes(finalizer)) continue;
      this.store.mutate('Ingress', m.metadata.namespace ?? '', m.metadata.name, (i) => {
        i.metadata.finalizers = [...((i.metadata.finalizers as string[] | undefined) ?? []), finalizer];
      });
    }
    if (group.members.length === 0) {
      const pending = await this.cleanupStack(key);
      if (pending) return { requeueAfterSeconds: this.clock.delay('lbcReconcileSeconds') };
      this.removeFinalizers(group.inactive, finalizer);
      return;
    }
    let model: StackModel;
    try {
      model = this.buildModel(key, group.members);
    } catch (e) {
      if (!(e instanceof BuildModelError)) throw e;
      for (const m of group.members) this.events.record(m, 'Warning', 'FailedBuildModel', `Failed build model due to ${e.message}`);
      return;
    }
    let dnsName: string;
    try {
      dnsName = await this.deploy(key, model);
    } catch (e) {
      for (const m of group.members) this.events.record(m, 'Warning', 'FailedDeployModel', `Failed deploy model due to ${(e as Error).message}`);
      throw e;
    }
    // The real controller sets only the port; the protocol stays empty.
    const wanted = [{ hostname: dnsName.toLowerCase(), ports: model.listeners.map((l) => ({ port: l.port, protocol: '' })) }];
    for (const m of group.members) {
      const cur = this.store.get('Ingress', m.metadata.namespace ?? '', m.metadata.name);
      if (!cur || JSON.stringify(o(o(cur.status).loadBalancer).ingress ?? null) === JSON.stringify(wanted)) continue;
      this.store.mutate('Ingress', m.metadata.namespace ?? '', m.metadata.name, (i) => {
        i.status = { ...o(i.status), loadBalancer: { ingress: wanted } };
      }, 'status');
    }
    this.removeFinalizers(group.inactive, finalizer);
    for (const m of group.members) this.events.record(m, 'Normal', 'SuccessfullyReconciled', 'Successfully reconciled');
  }

  private removeFinalizers(ings: KubeObject[], finalizer: string): void {
    for (const ing of ings) {
      try {
        this.store.mutate('Ingress', ing.metadata.namespace ?? '', ing.metadata.name, (i) => {
          i.metadata.finalizers = ((i.metadata.finalizers as string[] | undefined) ?? []).filter((f) => f !== finalizer);
        });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  private buildModel(groupKey: string, members: KubeObject[]): StackModel {
    const schemes = new Set<string>();
    for (const m of members) {
      const v = m.metadata.annotations?.[`${ANN}scheme`];
      if (v !== undefined) schemes.add(v);
    }
    if (schemes.size > 1) throw new BuildModelError(`conflicting scheme: map[${[...schemes].sort().map((x) => `${x}:{}`).join(' ')}]`);
    const scheme = [...schemes][0] ?? 'internal';
    if (scheme !== 'internal' && scheme !== 'internet-facing') throw new BuildModelError(`unknown scheme: ${scheme}`);
    const withDefault = members.filter((m) => o(m.spec).defaultBackend);
    if (withDefault.length > 1) {
      throw new BuildModelError(`multiple ingress defined default backend: [${withDefault.map((m) => `${m.metadata.namespace ?? 'default'}/${m.metadata.name}`).join(' ')}]`);
    }
    const tgs = new Map<string, TgModel>();
    const rules: RuleModel[] = [];
    let defaultTargets: ForwardTarget[] | undefined;
    for (const ing of members) {
      const r = this.buildMemberModel(groupKey, ing, tgs);
      rules.push(...r.rules);
      if (r.defaultTargets) defaultTargets = r.defaultTargets;
    }
    const lbName = groupLoadBalancerName(this.clusterName, groupKey, scheme);
    return { lbName, scheme, tgs, rules, listeners: groupListeners(members), ...(defaultTargets ? { defaultTargets } : {}) };
  }

  /** One member's rules and target groups (into the group's `tgs`). */
  private buildMemberModel(groupKey: string, ing: KubeObject, tgs: Map<string, TgModel>): { rules: RuleModel[]; defaultTargets?: ForwardTarget[] } {
    const ns = ing.metadata.namespace ?? 'default';
    const ingKey = `${ns}/${ing.metadata.name}`;
    const spec = o(ing.spec);
    const targetsFor = (backend: JsonObject): ForwardTarget[] => {
      const svcRef = o(backend.service);
      const svcName = s(svcRef.name);
      if (!svcName) throw new BuildModelError(`missing service backend in Ingress ${ingKey}`);
      const portRef = o(svcRef.port);
      if (s(portRef.name) === USE_ANNOTATION) return forwardAction(ing, svcName).map((t) => ({ tg: tgFor(t.serviceName, t.servicePort), ...(t.weight !== undefined ? { weight: t.weight } : {}) }));
      return [{ tg: tgFor(svcName, typeof portRef.number === 'number' ? portRef.number : s(portRef.name)) }];
    };
    const tgFor = (svcName: string, backendPort: number | string): string => {
      const resourceId = `${ingKey}-${svcName}:${String(backendPort)}`;
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
        // The real controller's text (its typo included): a ClusterIP Service has no node port to target.
        if (type !== 'NodePort' && type !== 'LoadBalancer') throw new BuildModelError(`ingress: ${ingKey}: TargetGroup port is empty. When using Instance targets, your service be must of type 'NodePort' or 'LoadBalancer'`);
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
      const name = lbcResourceName(ns, svcName, [this.clusterName, groupKey, ns, s(ing.metadata.name), s(svc.metadata.uid as JsonValue), String(backendPort), String(tgPort), targetType, 'HTTP', 'HTTP1']);
      tgs.set(resourceId, { resourceId, name, svcName, namespace: ns, backendPort, targetType, tgPort, hc, ...(attributes ? { attributes } : {}) });
      return resourceId;
    };
    const rules: RuleModel[] = [];
    for (const r of a(spec.rules)) {
      const rule = o(r);
      const host = s(rule.host) || undefined;
      for (const p of a(o(rule.http).paths)) {
        const path = o(p);
        const svcRef = o(o(path.backend).service);
        const conditions = s(o(svcRef.port).name) === USE_ANNOTATION ? annotationConditions(ing, s(svcRef.name)) : [];
        rules.push({ member: ingKey, ...(host ? { host } : {}), paths: pathPatterns(s(path.path), s(path.pathType)), targets: targetsFor(o(path.backend)), ...(conditions.length > 0 ? { conditions } : {}) });
      }
    }
    const defaultTargets = spec.defaultBackend ? targetsFor(o(spec.defaultBackend)) : undefined;
    return { rules, ...(defaultTargets ? { defaultTargets } : {}) };
  }

  private async deploy(stack: string, model: StackModel): Promise<string> {
    const stackTags = [
      { Key: 'elbv2.k8s.aws/cluster', Value: this.clusterName },
      { Key: 'ingress.k8s.aws/stack', Value: stack },
    ];
    const call = <A extends Elbv2Action>(action: A, input: Elbv2Input<A>): Promise<Elbv2Output<A>> => callElbv2(this.account, this.clock, action, input);
    // 1. target groups (+ health check drift, + attributes: only keys in the annotation, never reset)
    const tgArns = new Map<string, string>();
    for (const tg of model.tgs.values()) {
      const arn = await ensureTargetGroup(this.account, this.clock, {
        name: tg.name,
        protocol: 'HTTP',
        port: tg.tgPort,
        targetType: tg.targetType,
        healthCheck: {
          HealthCheckProtocol: 'HTTP',
          HealthCheckPort: tg.hc.port,
          HealthCheckPath: tg.hc.path,
          HealthCheckIntervalSeconds: tg.hc.interval,
          HealthCheckTimeoutSeconds: tg.hc.timeout,
          HealthyThresholdCount: tg.hc.healthy,
          UnhealthyThresholdCount: tg.hc.unhealthy,
          Matcher: { HttpCode: tg.hc.codes },
        },
        tags: [...stackTags, { Key: 'ingress.k8s.aws/resource', Value: tg.resourceId }],
        ...(tg.attributes ? { attributes: tg.attributes } : {}),
      });
      tgArns.set(tg.resourceId, arn);
    }
    const known = this.stackTgs.get(stack) ?? new Set<string>();
    for (const arn of tgArns.values()) known.add(arn);
    this.stackTgs.set(stack, known);

    // 2. load balancer (replaced when its name changed), 3. listener, 4. rules
    await deleteReplacedLoadBalancer(this.account, this.clock, this.stackLbs.get(stack), model.lbName);
    const lbOut = await call('CreateLoadBalancer', {
      Name: model.lbName,
      Scheme: model.scheme as 'internal' | 'internet-facing',
      Type: 'application',
      IpAddressType: 'ipv4',
      Tags: [...stackTags, { Key: 'ingress.k8s.aws/resource', Value: 'LoadBalancer' }],
    });
    const lb = lbOut.LoadBalancers![0]!;
    this.stackLbs.set(stack, lb.LoadBalancerArn!);
    const defaultActions: Action[] = model.defaultTargets
      ? [forwardActionOf(model.defaultTargets, tgArns)]
      : [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain' }, Order: 1 }];
    const existingListeners = (await call('DescribeListeners', { LoadBalancerArn: lb.LoadBalancerArn! })).Listeners ?? [];
    for (const l of existingListeners) {
      if (!model.listeners.some((m) => m.port === l.Port && m.protocol === l.Protocol)) await call('DeleteListener', { ListenerArn: l.ListenerArn! });
    }
    for (const lm of model.listeners) {
      const actions: Action[] =
        lm.redirectTo !== undefined ? [{ Type: 'redirect', RedirectConfig: { Port: String(lm.redirectTo), Protocol: 'HTTPS', StatusCode: 'HTTP_301' }, Order: 1 }] : defaultActions;
      const certificates = lm.protocol === 'HTTPS' ? [{ CertificateArn: lm.certificates[0]! }] : undefined;
      let listener = existingListeners.find((l) => l.Port === lm.port && l.Protocol === lm.protocol);
      if (!listener) {
        listener = (
          await call('CreateListener', { LoadBalancerArn: lb.LoadBalancerArn!, Port: lm.port, Protocol: lm.protocol, DefaultActions: actions, ...(certificates ? { Certificates: certificates } : {}), Tags: stackTags })
        ).Listeners![0]!;
      } else if (JSON.stringify(listener.DefaultActions) !== JSON.stringify(actions) || (certificates && listener.Certificates?.[0]?.CertificateArn !== certificates[0]?.CertificateArn)) {
        await call('ModifyListener', { ListenerArn: listener.ListenerArn!, DefaultActions: actions, ...(certificates ? { Certificates: certificates } : {}) });
      }
      await this.deployRules(listener.ListenerArn!, model.rules.filter((r) => lm.members.includes(r.member)), tgArns, stackTags);
    }

    // 5. TargetGroupBindings (named like their TG, in the Service's namespace)
    const labels = groupStackLabels(stack);
    const wantedTgbs = new Set<string>();
    for (const tg of model.tgs.values()) {
      wantedTgbs.add(`${tg.namespace}/${tg.name}`);
      const spec: JsonObject = {
        targetGroupARN: tgArns.get(tg.resourceId)!,
        targetType: tg.targetType,
        serviceRef: { name: tg.svcName, port: tg.backendPort },
        ipAddressType: 'ipv4',
        // As the real controller writes them (its TGB builder; docs/real-lbc.md, differential).
        targetGroupProtocol: 'HTTP',
        vpcID: this.account.alb.vpcId,
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
    await deleteStaleTgbs(this.store, this.account, this.clock, this.stackTgbs(stack), wantedTgbs, new Set(tgArns.values()), known);
    return lb.DNSName!;
  }

  /** One listener's rules, numbered in group order; an ssl-redirect listener has none. */
  private async deployRules(listenerArn: string, rules: RuleModel[], tgArns: Map<string, string>, stackTags: Array<{ Key: string; Value: string }>): Promise<void> {
    const call = <A extends Elbv2Action>(action: A, input: Elbv2Input<A>): Promise<Elbv2Output<A>> => callElbv2(this.account, this.clock, action, input);
    const desired = rules.map((r, i) => {
      const conditions: RuleCondition[] = [];
      if (r.host) conditions.push({ Field: 'host-header', HostHeaderConfig: { Values: [r.host] } });
      conditions.push({ Field: 'path-pattern', PathPatternConfig: { Values: r.paths } });
      conditions.push(...(r.conditions ?? []));
      const actions: Action[] = [forwardActionOf(r.targets, tgArns)];
      return { priority: i + 1, conditions, actions };
    });
    const existing = (await call('DescribeRules', { ListenerArn: listenerArn })).Rules?.filter((r) => !r.IsDefault) ?? [];
    for (const r of existing) {
      if (!desired.some((d) => String(d.priority) === r.Priority)) await call('DeleteRule', { RuleArn: r.RuleArn! });
    }
    for (const d of desired) {
      const cur = existing.find((r) => r.Priority === String(d.priority));
      if (!cur) await call('CreateRule', { ListenerArn: listenerArn, Priority: d.priority, Conditions: d.conditions, Actions: d.actions, Tags: stackTags });
      else if (JSON.stringify(canonicalConditions(cur.Conditions ?? [])) !== JSON.stringify(canonicalConditions(d.conditions)) || JSON.stringify(cur.Actions) !== JSON.stringify(d.actions)) {
        await call('ModifyRule', { RuleArn: cur.RuleArn!, Conditions: d.conditions, Actions: d.actions });
      }
    }
  }

  private stackTgbs(stack: string): KubeObject[] {
    const want = Object.entries(groupStackLabels(stack));
    return this.store.list('TargetGroupBinding').items.filter((t) => want.every(([k, v]) => t.metadata.labels?.[k] === v));
  }

  /** An empty group: TGBs first (their controller deregisters and releases gates), then the ALB, then the TGs. Returns true while waiting. */
  private async cleanupStack(stack: string): Promise<boolean> {
    const known = this.stackTgs.get(stack) ?? new Set<string>();
    const pending = deleteStackTgbs(this.store, () => this.stackTgbs(stack), known);
    this.stackTgs.set(stack, known);
    if (pending) return true;
    const lbArn = this.stackLbs.get(stack) ?? (await findStackLoadBalancer(this.account, this.clock, { type: 'application', stackTag: 'ingress.k8s.aws/stack', stack, clusterName: this.clusterName }));
    await deleteLoadBalancerAndTargetGroups(this.account, this.clock, lbArn, known);
    this.stackTgs.delete(stack);
    this.stackLbs.delete(stack);
    return false;
  }
}

const USE_ANNOTATION = 'use-annotation';

export interface AnnotationForward {
  serviceName: string;
  servicePort: number | string;
  weight?: number;
}

/** Case-insensitive field of a JSON object, as Go's encoding/json matches struct fields (Argo writes `ForwardConfig`). */
function field(obj: JsonObject, name: string): JsonValue | undefined {
  const lower = name.toLowerCase();
  const key = Object.keys(obj).find((k) => k === name) ?? Object.keys(obj).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : obj[key];
}

/**
 * The forward action of `alb.ingress.kubernetes.io/actions.<service>` for a `use-annotation` backend, as LBC
 * reads it: a JSON Action `{type: forward, forwardConfig: {targetGroups: [{serviceName, servicePort, weight}]}}`
 * (field names in any case; a servicePort "80" is the port number 80, a name otherwise), with LBC's errors.
 */
export function forwardAction(ing: KubeObject, svcName: string): AnnotationForward[] {
  const key = `${ANN}actions.${svcName}`;
  const raw = ing.metadata.annotations?.[key];
  if (raw === undefined) throw new BuildModelError(`missing actions.${svcName} configuration`);
  let action: JsonValue;
  try {
    action = JSON.parse(raw) as JsonValue;
  } catch (e) {
    throw new BuildModelError(`failed to parse json annotation, ${key}: ${raw}: ${(e as Error).message}`);
  }
  const a = o(action);
  const type = s(field(a, 'type'));
  if (type !== 'forward') {
    if (type === 'fixed-response' || type === 'redirect') throw new BuildModelError(`the lab emulates forward actions only, not ${type} (annotation ${key})`);
    throw new BuildModelError(`unknown action type: ${type}`);
  }
  const fc = field(a, 'forwardConfig');
  if (field(a, 'targetGroupARN') !== undefined || field(a, 'targetGroupName') !== undefined) {
    if (fc !== undefined) throw new BuildModelError('either ForwardConfig or TargetGroupARN/TargetGroupName can be specified');
    throw new BuildModelError(`the lab emulates forward actions to Services only, not to a targetGroupARN/Name (annotation ${key})`);
  }
  if (fc === undefined) throw new BuildModelError('missing ForwardConfig or TargetGroupARN/TargetGroupName');
  const tgs = a_(field(o(fc), 'targetGroups'));
  if (tgs.length === 0) throw new BuildModelError('invalid ForwardConfig: TargetGroups shouldn\'t be empty');
  return tgs.map((t) => {
    const tuple = o(t);
    const serviceName = s(field(tuple, 'serviceName'));
    const port = field(tuple, 'servicePort');
    if (!serviceName || port === undefined || port === null) throw new BuildModelError(`the lab emulates targetGroups by serviceName and servicePort only (annotation ${key})`);
    const servicePort = typeof port === 'number' ? port : /^\d+$/.test(String(port)) ? Number(port) : String(port);
    const w = field(tuple, 'weight');
    return { serviceName, servicePort, ...(typeof w === 'number' ? { weight: w } : {}) };
  });
}

function a_(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}

/** One target group without a weight: the plain forward LBC sends; otherwise a weighted ForwardConfig. */
function forwardActionOf(targets: ForwardTarget[], tgArns: Map<string, string>): Action {
  const only = targets[0];
  if (targets.length === 1 && only && only.weight === undefined) return { Type: 'forward', TargetGroupArn: tgArns.get(only.tg)!, Order: 1 };
  return {
    Type: 'forward',
    ForwardConfig: { TargetGroups: targets.map((t) => ({ TargetGroupArn: tgArns.get(t.tg)!, Weight: t.weight ?? 1 })) },
    Order: 1,
  };
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
  return cs.map((c) => [String(c.Field), [...(c.HttpHeaderConfig ? [c.HttpHeaderConfig.HttpHeaderName ?? ''] : []), ...(c.PathPatternConfig?.Values ?? c.HostHeaderConfig?.Values ?? c.HttpHeaderConfig?.Values ?? c.Values ?? [])]]);
}

/**
 * `alb.ingress.kubernetes.io/conditions.<service>` for a use-annotation backend, as LBC reads it: a JSON list of
 * RuleConditions (field names in any case; Argo's header routes write `[{field: http-header, httpHeaderConfig:
 * {httpHeaderName, values}}]`). The lab builds http-header conditions only.
 */
export function annotationConditions(ing: KubeObject, svcName: string): RuleCondition[] {
  const key = `${ANN}conditions.${svcName}`;
  const raw = ing.metadata.annotations?.[key];
  if (raw === undefined) return [];
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(raw) as JsonValue;
  } catch (e) {
    throw new BuildModelError(`failed to parse json annotation, ${key}: ${raw}: ${(e as Error).message}`);
  }
  return a(parsed).map((c) => {
    const cond = o(c);
    const f = s(field(cond, 'field'));
    if (f !== 'http-header') throw new BuildModelError(`the lab emulates http-header conditions only, not ${f} (annotation ${key})`);
    const cfg = o(field(cond, 'httpHeaderConfig'));
    return { Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: s(field(cfg, 'httpHeaderName')), Values: a(field(cfg, 'values')).map((v) => s(v)) } };
  });
}

export function backendServices(ing: KubeObject): string[] {
  const spec = o(ing.spec);
  const out = new Set<string>();
  const add = (b: JsonValue | undefined): void => {
    const svc = o(o(b).service);
    const n = s(svc.name);
    if (!n) return;
    out.add(n);
    if (s(o(svc.port).name) === USE_ANNOTATION) {
      try {
        for (const t of forwardAction(ing, n)) out.add(t.serviceName);
      } catch {
        // a broken annotation: the reconcile reports it
      }
    }
  };
  add(spec.defaultBackend);
  for (const r of a(spec.rules)) for (const p of a(o(o(r).http).paths)) add(o(p).backend);
  return [...out];
}
