import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { lbcResourceName } from '../alb/names.js';
import type { AwsAccount } from '../aws/account.js';
import type { ClusterAccess } from '../cluster.js';
import type { StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { BuildModelError, TGB_FINALIZER, parseStringMap } from './annotations.js';
import {
  EventRecorder,
  WorkQueue,
  a,
  callElbv2,
  deleteLoadBalancerAndTargetGroups,
  deleteReplacedLoadBalancer,
  deleteStackTgbs,
  deleteStaleTgbs,
  ensureTargetGroup,
  findStackLoadBalancer,
  isNotFound,
  o,
  s,
  type ReconcileResult,
  type TargetGroupSpec,
} from './util.js';

/**
 * LBC's Service controller (the NLB path, controllers/service + pkg/service), for the shapes the lab serves:
 *
 * - which Services: not being deleted, and `spec.loadBalancerClass: service.k8s.aws/nlb`, or (no class) the annotation
 *   `service.beta.kubernetes.io/aws-load-balancer-type` is `nlb-ip`, or `external` with
 *   `aws-load-balancer-nlb-target-type` `ip` or `instance` (`service.kubernetes.io/…` prefixes accepted too);
 * - the model: one NLB (`k8s-<ns8>-<svc8>-<hash>` or `aws-load-balancer-name`; scheme from `aws-load-balancer-scheme`,
 *   default internal); per Service port a TCP listener on that port, a TCP target group (port = targetPort,
 *   health check TCP/traffic-port, interval 10, timeout 10, thresholds 3/3; `aws-load-balancer-healthcheck-*`
 *   annotations: protocol TCP|HTTP|HTTPS, port, path, interval, timeout, healthy/unhealthy threshold, success-codes
 *   (HTTP, default 200-399)), its attributes from `aws-load-balancer-target-group-attributes`, and a
 *   TargetGroupBinding named like the target group in the Service's namespace, labelled
 *   `service.k8s.aws/stack-namespace`/`stack-name` — its controller registers the pods and drives the readiness gates;
 * - status.loadBalancer.ingress `[{hostname: <NLB DNS, lower case>, ports: [{port, protocol}]}]`, finalizer
 *   `service.k8s.aws/resources`; events SuccessfullyReconciled / FailedBuildModel / FailedDeployModel with LBC's texts;
 * - a Service no longer managed (deleted, class/annotation changed) with the finalizer: TGBs deleted first, then
 *   the NLB and its target groups, then the status cleared and the finalizer removed.
 *
 * Not emulated: instance targets (the lab has no nodes: such Services get a FailedBuildModel event naming the lab
 * limit; a ClusterIP Service with instance targets gets LBC's own error first), UDP/TLS listeners (FailedBuildModel),
 * per-port attribute annotations, security groups, subnets, EIPs, proxy protocol, the TG replacement LBC performs
 * when target type or health-check protocol changes (the lab creates the new TG and deletes the old one after).
 */

export const SERVICE_FINALIZER = 'service.k8s.aws/resources';
export const NLB_LOAD_BALANCER_CLASS = 'service.k8s.aws/nlb';
const TGB_API = 'elbv2.k8s.aws/v1beta1';

interface PortModel {
  port: number;
  protocol: string;
  resourceId: string;
  tgName: string;
  tgPort: number;
  targetType: 'ip' | 'instance';
}

interface NlbModel {
  lbName: string;
  scheme: 'internal' | 'internet-facing';
  ports: PortModel[];
  healthCheck: TargetGroupSpec['healthCheck'];
  attributes?: Record<string, string>;
}

/** A Service annotation `service.beta.kubernetes.io/aws-load-balancer-<suffix>` (or the `service.kubernetes.io/` prefix). */
export function svcAnnotation(svc: KubeObject, suffix: string): string | undefined {
  const ann = svc.metadata.annotations ?? {};
  return ann[`service.beta.kubernetes.io/aws-load-balancer-${suffix}`] ?? ann[`service.kubernetes.io/aws-load-balancer-${suffix}`];
}

/** Does LBC's Service controller manage this Service (pkg/service/service_utils.go IsServiceSupported)? */
export function isLbcService(svc: KubeObject): boolean {
  if (svc.metadata.deletionTimestamp) return false;
  const cls = o(svc.spec).loadBalancerClass;
  if (typeof cls === 'string') return cls === NLB_LOAD_BALANCER_CLASS;
  const type = svcAnnotation(svc, 'type');
  if (type === 'nlb-ip') return true;
  const targetType = svcAnnotation(svc, 'nlb-target-type');
  return type === 'external' && (targetType === 'ip' || targetType === 'instance');
}

export class ServiceController {
  readonly queue: WorkQueue;
  private readonly events: EventRecorder;
  private readonly fingerprints = new Map<string, string>();
  private readonly lbArns = new Map<string, string>();
  private readonly tgArns = new Map<string, Set<string>>();
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly store: ClusterAccess,
    private readonly clock: LabClock,
    private readonly account: AwsAccount,
    private readonly clusterName: string,
  ) {
    this.events = new EventRecorder(store, 'service');
    this.queue = new WorkQueue(clock, (key) => this.reconcile(key));
  }

  start(): void {
    this.unwatch.push(this.store.watch('Service', undefined, undefined, (e) => this.onService(e)));
    for (const svc of this.store.list('Service').items) this.enqueue(svc);
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch.splice(0)) u();
    await this.queue.stop();
  }

  private enqueue(svc: KubeObject): void {
    this.queue.enqueue(`${svc.metadata.namespace ?? ''}/${svc.metadata.name}`, this.clock.delay('lbcIngressReconcileSeconds'));
  }

  private onService(e: StoreEvent): void {
    const key = `${e.object.metadata.namespace ?? ''}/${e.object.metadata.name}`;
    if (e.type === 'DELETED') {
      this.fingerprints.delete(key);
      return;
    }
    // Status and finalizer writes (our own) do not change what the model reads.
    const fp = JSON.stringify([e.object.spec, e.object.metadata.annotations, e.object.metadata.deletionTimestamp ?? null, e.object.metadata.uid]);
    if (this.fingerprints.get(key) === fp) return;
    this.fingerprints.set(key, fp);
    if (isLbcService(e.object) || ((e.object.metadata.finalizers as string[] | undefined) ?? []).includes(SERVICE_FINALIZER)) this.enqueue(e.object);
  }

  // ------------------------------------------------------------------ reconcile

  async reconcile(key: string): Promise<ReconcileResult> {
    const [ns, name] = key.split('/') as [string, string];
    const svc = this.store.get('Service', ns, name);
    if (!svc) return;
    const finalizers = (svc.metadata.finalizers as string[] | undefined) ?? [];
    if (!isLbcService(svc)) {
      if (!finalizers.includes(SERVICE_FINALIZER)) return;
      if (await this.cleanup(key)) return { requeueAfterSeconds: this.clock.delay('lbcReconcileSeconds') };
      this.mutate(ns, name, (x) => {
        x.status = { ...o(x.status), loadBalancer: {} };
      }, 'status');
      this.mutate(ns, name, (x) => {
        x.metadata.finalizers = ((x.metadata.finalizers as string[] | undefined) ?? []).filter((f) => f !== SERVICE_FINALIZER);
      });
      return;
    }
    let model: NlbModel;
    try {
      model = this.buildModel(svc);
    } catch (e) {
      if (!(e instanceof BuildModelError)) throw e;
      this.events.record(svc, 'Warning', 'FailedBuildModel', `Failed build model due to ${e.message}`);
      return;
    }
    if (!finalizers.includes(SERVICE_FINALIZER)) {
      this.mutate(ns, name, (x) => {
        x.metadata.finalizers = [...((x.metadata.finalizers as string[] | undefined) ?? []), SERVICE_FINALIZER];
      });
    }
    let dnsName: string;
    try {
      dnsName = await this.deploy(svc, model);
    } catch (e) {
      this.events.record(svc, 'Warning', 'FailedDeployModel', `Failed deploy model due to ${(e as Error).message}`);
      throw e;
    }
    const wanted = [{ hostname: dnsName.toLowerCase(), ports: model.ports.map((p) => ({ port: p.port, protocol: p.protocol })) }];
    const cur = this.store.get('Service', ns, name);
    if (cur && JSON.stringify(o(o(cur.status).loadBalancer).ingress ?? null) !== JSON.stringify(wanted)) {
      this.mutate(ns, name, (x) => {
        x.status = { ...o(x.status), loadBalancer: { ingress: wanted } };
      }, 'status');
    }
    this.events.record(svc, 'Normal', 'SuccessfullyReconciled', 'Successfully reconciled');
  }

  private mutate(ns: string, name: string, fn: (o: KubeObject) => void, sub?: 'status'): void {
    try {
      this.store.mutate('Service', ns, name, fn, sub);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private buildModel(svc: KubeObject): NlbModel {
    const ns = svc.metadata.namespace ?? 'default';
    const spec = o(svc.spec);
    const svcType = s(spec.type) || 'ClusterIP';
    const lbType = svcAnnotation(svc, 'type');
    const rawTargetType = svcAnnotation(svc, 'nlb-target-type') ?? 'instance';
    const targetType: 'ip' | 'instance' = lbType === 'nlb-ip' || rawTargetType === 'ip' ? 'ip' : 'instance';
    if (targetType === 'instance') {
      if (svcType === 'ClusterIP') throw new BuildModelError(`unsupported service type "${svcType}" for load balancer target type "${rawTargetType}"`);
      throw new BuildModelError('the lab has no nodes, so instance targets are not emulated; set service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip');
    }
    const rawScheme = svcAnnotation(svc, 'scheme') ?? 'internal';
    if (rawScheme !== 'internal' && rawScheme !== 'internet-facing') throw new BuildModelError(`unknown scheme: ${rawScheme}`);
    const scheme = rawScheme;
    const int = (suffix: string, dflt: number): number => {
      const v = svcAnnotation(svc, suffix);
      if (v === undefined) return dflt;
      if (!/^[+-]?\d+$/.test(v.trim())) throw new BuildModelError(`failed to parse int32 annotation, service.beta.kubernetes.io/aws-load-balancer-${suffix}: ${v}: strconv.ParseInt: parsing "${v}": invalid syntax`);
      return Number(v.trim());
    };
    const rawProto = svcAnnotation(svc, 'healthcheck-protocol') ?? 'TCP';
    const hcProtocol = rawProto.toUpperCase();
    if (hcProtocol !== 'TCP' && hcProtocol !== 'HTTP' && hcProtocol !== 'HTTPS') throw new BuildModelError(`unsupported health check protocol ${rawProto}`);
    let hcPort = svcAnnotation(svc, 'healthcheck-port') ?? 'traffic-port';
    if (hcPort !== 'traffic-port' && !/^\d+$/.test(hcPort)) {
      const named = a(spec.ports)
        .map((p) => o(p))
        .find((p) => s(p.name) === hcPort);
      if (!named) throw new BuildModelError(`failed to resolve healthCheckPort: unable to find port ${hcPort} on service ${ns}/${svc.metadata.name}`);
      const tp: JsonValue | undefined = named.targetPort;
      if (typeof tp !== 'number') throw new BuildModelError("cannot use named healthCheckPort for IP TargetType when service's targetPort is a named port");
      hcPort = String(tp);
    }
    const interval = int('healthcheck-interval', 10);
    const healthCheck: NlbModel['healthCheck'] = {
      HealthCheckProtocol: hcProtocol,
      HealthCheckPort: hcPort,
      ...(hcProtocol !== 'TCP' ? { HealthCheckPath: svcAnnotation(svc, 'healthcheck-path') ?? '/' } : {}),
      HealthCheckIntervalSeconds: interval,
      HealthCheckTimeoutSeconds: int('healthcheck-timeout', 10),
      HealthyThresholdCount: int('healthcheck-healthy-threshold', 3),
      UnhealthyThresholdCount: int('healthcheck-unhealthy-threshold', 3),
      ...(hcProtocol !== 'TCP' ? { Matcher: { HttpCode: svcAnnotation(svc, 'healthcheck-success-codes') ?? '200-399' } } : {}),
    };
    const rawAttrs = svcAnnotation(svc, 'target-group-attributes');
    const attributes = rawAttrs !== undefined ? parseStringMap('service.beta.kubernetes.io/aws-load-balancer-target-group-attributes', rawAttrs) : undefined;
    const ports: PortModel[] = [];
    for (const pv of a(spec.ports)) {
      const p = o(pv);
      const protocol = s(p.protocol) || 'TCP';
      if (protocol !== 'TCP') throw new BuildModelError(`the lab emulates TCP listeners only, not ${protocol} (port ${String(p.port)})`);
      const port = Number(p.port);
      const tp: JsonValue | undefined = p.targetPort;
      // A named targetPort: LBC uses 1 (not in the data path; the TGB registers each pod's own port).
      const tgPort = typeof tp === 'number' ? tp : typeof tp === 'string' && tp !== '' ? (/^\d+$/.test(tp) ? Number(tp) : 1) : port;
      const tgName = lbcResourceName(ns, svc.metadata.name, [this.clusterName, s(svc.metadata.uid as JsonValue), String(tgPort), String(port), targetType, 'TCP', hcProtocol, String(interval)]);
      ports.push({ port, protocol, resourceId: `${ns}/${svc.metadata.name}:${port}`, tgName, tgPort, targetType });
    }
    if (ports.length === 0) throw new BuildModelError(`service ${ns}/${svc.metadata.name} has no ports`);
    const explicitName = svcAnnotation(svc, 'name');
    if (explicitName !== undefined && explicitName.length > 32) throw new BuildModelError('load balancer name cannot be longer than 32 characters');
    const lbName = explicitName ?? lbcResourceName(ns, svc.metadata.name, [this.clusterName, s(svc.metadata.uid as JsonValue), scheme]);
    return { lbName, scheme, ports, healthCheck, ...(attributes ? { attributes } : {}) };
  }

  private async deploy(svc: KubeObject, model: NlbModel): Promise<string> {
    const ns = svc.metadata.namespace ?? 'default';
    const stack = `${ns}/${svc.metadata.name}`;
    const stackTags = [
      { Key: 'elbv2.k8s.aws/cluster', Value: this.clusterName },
      { Key: 'service.k8s.aws/stack', Value: stack },
    ];
    // 1. target groups
    const arns = new Map<number, string>();
    for (const p of model.ports) {
      const arn = await ensureTargetGroup(this.account, this.clock, {
        name: p.tgName,
        protocol: 'TCP',
        port: p.tgPort,
        targetType: p.targetType,
        healthCheck: model.healthCheck,
        tags: [...stackTags, { Key: 'service.k8s.aws/resource', Value: p.resourceId }],
        ...(model.attributes ? { attributes: model.attributes } : {}),
      });
      arns.set(p.port, arn);
    }
    const known = this.tgArns.get(stack) ?? new Set<string>();
    for (const arn of arns.values()) known.add(arn);
    this.tgArns.set(stack, known);

    // 2. load balancer (replaced when its name changed), 3. listeners (one per Service port, forwarding to its target group)
    await deleteReplacedLoadBalancer(this.account, this.clock, this.lbArns.get(stack), model.lbName);
    const lb = (
      await callElbv2(this.account, this.clock, 'CreateLoadBalancer', {
        Name: model.lbName,
        Type: 'network',
        Scheme: model.scheme,
        IpAddressType: 'ipv4',
        Tags: [...stackTags, { Key: 'service.k8s.aws/resource', Value: 'LoadBalancer' }],
      })
    ).LoadBalancers![0]!;
    this.lbArns.set(stack, lb.LoadBalancerArn!);
    const listeners = (await callElbv2(this.account, this.clock, 'DescribeListeners', { LoadBalancerArn: lb.LoadBalancerArn! })).Listeners ?? [];
    for (const l of listeners) {
      if (!model.ports.some((p) => p.port === l.Port)) await callElbv2(this.account, this.clock, 'DeleteListener', { ListenerArn: l.ListenerArn! });
    }
    for (const p of model.ports) {
      const actions = [{ Type: 'forward' as const, TargetGroupArn: arns.get(p.port)!, Order: 1 }];
      const cur = listeners.find((l) => l.Port === p.port);
      if (!cur) {
        await callElbv2(this.account, this.clock, 'CreateListener', { LoadBalancerArn: lb.LoadBalancerArn!, Port: p.port, Protocol: 'TCP', DefaultActions: actions, Tags: stackTags });
      } else if (JSON.stringify(cur.DefaultActions) !== JSON.stringify(actions)) {
        await callElbv2(this.account, this.clock, 'ModifyListener', { ListenerArn: cur.ListenerArn!, DefaultActions: actions });
      }
    }

    // 4. TargetGroupBindings (named like their TG), then stale TGBs and their target groups
    const labels = { 'service.k8s.aws/stack-namespace': ns, 'service.k8s.aws/stack-name': svc.metadata.name };
    const wanted = new Set<string>();
    for (const p of model.ports) {
      wanted.add(`${ns}/${p.tgName}`);
      const spec: JsonObject = {
        targetGroupARN: arns.get(p.port)!,
        targetType: p.targetType,
        serviceRef: { name: svc.metadata.name, port: p.port },
        ipAddressType: 'ipv4',
        targetGroupProtocol: 'TCP',
      };
      if (!this.store.get('TargetGroupBinding', ns, p.tgName)) {
        this.store.create('TargetGroupBinding', { apiVersion: TGB_API, kind: 'TargetGroupBinding', metadata: { name: p.tgName, namespace: ns, labels, finalizers: [TGB_FINALIZER] }, spec });
      }
    }
    const live = new Set(arns.values());
    await deleteStaleTgbs(this.store, this.account, this.clock, this.stackTgbs(ns, svc.metadata.name), wanted, live, known);
    return lb.DNSName!;
  }

  private stackTgbs(ns: string, name: string): KubeObject[] {
    return this.store
      .list('TargetGroupBinding', ns)
      .items.filter((t) => t.metadata.labels?.['service.k8s.aws/stack-namespace'] === ns && t.metadata.labels?.['service.k8s.aws/stack-name'] === name);
  }

  /** TGBs first (their controller deregisters and releases gates), then the NLB, then its TGs. Returns true while waiting. */
  private async cleanup(stack: string): Promise<boolean> {
    const [ns, name] = stack.split('/') as [string, string];
    const known = this.tgArns.get(stack) ?? new Set<string>();
    const pending = deleteStackTgbs(this.store, () => this.stackTgbs(ns, name), known);
    this.tgArns.set(stack, known);
    if (pending) return true;
    const lbArn = this.lbArns.get(stack) ?? (await findStackLoadBalancer(this.account, this.clock, { type: 'network', stackTag: 'service.k8s.aws/stack', stack, clusterName: this.clusterName }));
    await deleteLoadBalancerAndTargetGroups(this.account, this.clock, lbArn, known);
    this.tgArns.delete(stack);
    this.lbArns.delete(stack);
    return false;
  }
}
