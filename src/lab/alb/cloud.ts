import type { IncomingHttpHeaders } from 'node:http';
import { EventEmitter } from 'node:events';
import type {
  Action,
  AddTagsInput,
  CreateListenerInput,
  CreateListenerOutput,
  CreateLoadBalancerInput,
  CreateLoadBalancerOutput,
  CreateRuleInput,
  CreateRuleOutput,
  CreateTargetGroupInput,
  CreateTargetGroupOutput,
  DeleteListenerInput,
  DeleteLoadBalancerInput,
  DeleteRuleInput,
  DeleteTargetGroupInput,
  DeregisterTargetsInput,
  DescribeListenersInput,
  DescribeListenersOutput,
  DescribeLoadBalancersInput,
  DescribeLoadBalancersOutput,
  DescribeRulesInput,
  DescribeRulesOutput,
  DescribeTagsInput,
  DescribeTagsOutput,
  DescribeTargetGroupAttributesInput,
  DescribeTargetGroupAttributesOutput,
  DescribeTargetGroupsInput,
  DescribeTargetGroupsOutput,
  DescribeTargetHealthInput,
  DescribeTargetHealthOutput,
  Listener,
  LoadBalancer,
  ModifyListenerInput,
  ModifyListenerOutput,
  ModifyRuleInput,
  ModifyRuleOutput,
  ModifyTargetGroupAttributesInput,
  ModifyTargetGroupAttributesOutput,
  ModifyTargetGroupInput,
  ModifyTargetGroupOutput,
  RegisterTargetsInput,
  RemoveTagsInput,
  Rule,
  RuleCondition,
  SetRulePrioritiesInput,
  SetRulePrioritiesOutput,
  Tag,
  TargetDescription,
  TargetGroup,
  TargetHealthDescription,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { connectToPod, type PodNetwork } from '../network.js';
import type { LabRandom } from '../random.js';
import type { LabClock } from '../timing.js';
import { DataPlaneServer, type DataPlaneHost, type DpTarget, type RouteDecision } from './dataplane.js';
import { AlbCertificates, httpsListenerServer } from './tls.js';
import { AwsApiError } from './errors.js';
import { AWS_API_HEALTH_CHECK_DEFAULTS, AWS_API_TCP_HEALTH_CHECK_DEFAULTS, parseMatcher, probeTarget, type HealthCheckConfig, type ProbeResult } from './healthcheck.js';
import { AlbMetrics, SimulatedEpoch, type TrafficCounters } from './metrics.js';
import { NlbListenerServer, probeTcp, type NlbHost, type TargetConnection } from './nlb.js';
import {
  canonicalHostedZoneId,
  listenerArn,
  loadBalancerArn,
  loadBalancerDnsName,
  networkLoadBalancerDnsName,
  randomHex16,
  ruleArn,
  targetGroupArn,
} from './names.js';

/**
 * The lab's ELBv2 account: Application and Network Load Balancers, listeners, rules, target groups and targets,
 * with real health checks (HTTP for ALB target groups; TCP, or HTTP, for NLB ones), AWS's target states and
 * reasons, deregistration delay, data-plane propagation delay, an HTTP data plane per ALB (dataplane.ts) and a TCP
 * data plane per NLB listener (nlb.ts). Inputs are validated and errors answered as ELBv2 does (ValidationError,
 * DuplicateTargetGroupName, DuplicateLoadBalancerName, TargetGroupNotFound, IncompatibleProtocols,
 * TargetGroupAssociationLimit, ResourceInUse…).
 *
 * Every public ELBv2 operation takes and returns the SDK's own input/output shapes, so the in-process LBC and
 * the awsQuery server (src/lab/aws) see exactly what a client of the real API would see. Numeric fields are
 * coerced, because the wire gives strings.
 *
 * HTTPS listeners: each on its own loopback TLS server, with certificates from the lab CA standing in for the ACM
 * ones named (see tls.ts); the HTTP data plane serves the HTTP listener (port 80 first).
 *
 * Not emulated: TLS/UDP listeners, HTTPS/TLS/UDP target groups, instance/lambda/alb targets' reachability (instance
 * ids are accepted, never reached), NLB listener rules (AWS has none), security groups, subnets and AZ DNS, the
 * NLB's `unhealthy.draining` state, the exact wording of some ValidationError messages.
 */

export interface AlbCloudOptions {
  clock: LabClock;
  region: string;
  /**
   * Where a target's ip:port leads (the lab network the kubelet maintains). An address no pod owns is a blackhole,
   * as a released pod IP in a VPC: the data plane waits `albConnectTimeoutSeconds` and answers 504, health checks
   * time out; a pod address with nothing listening refuses at once (→ 502, Target.FailedHealthChecks).
   */
  network: PodNetwork;
  /** Origin of the simulated epoch (see metrics.ts); default: construction time. */
  epochOriginMs?: number;
  /** ALB idle timeout in simulated seconds (AWS default 60): no response from the target within it → 504. */
  idleTimeoutSeconds?: number;
  vpcId?: string;
}

export interface LoadBalancerSummary {
  arn: string;
  name: string;
  type: 'application' | 'network';
  dnsName: string;
  /** `address` is where the lab serves the listener: `http://127.0.0.1:<port>` (ALB), `127.0.0.1:<port>` (NLB). */
  listeners: Array<{ port: number; protocol: string; address: string }>;
  tags: Record<string, string>;
  targetGroupArns: string[];
}

export type TargetStatus = 'registering' | 'checking' | 'healthy' | 'unhealthy' | 'draining';

/** One entry of the target history: every state change, drain completion and data-plane change. */
export interface TargetEvent {
  /** Real time (ms since epoch). */
  at: number;
  tgArn: string;
  id: string;
  port: number;
  kind: 'state' | 'drain-complete' | 'removed' | 'data-plane';
  /** For kind 'state': the ELB state; for 'data-plane': 'routable' | 'not-routable' | 'added' | 'removed'. */
  state: string;
  reason?: string;
  description?: string;
  /** For kind 'data-plane' on a load balancer with more than one node: which node's routing table changed. */
  node?: number;
}

/** One load-balancer node's view of a target: its own registration, health checks and verdict. */
interface NodeView {
  phase: 'registering' | 'checking' | 'healthy' | 'unhealthy';
  okStreak: number;
  failStreak: number;
  reason?: string;
  description?: string;
  checkTimer?: NodeJS.Timeout;
  probing: boolean;
}

interface TargetRec {
  key: string;
  id: string;
  port: number;
  az?: string;
  /** The control plane's (DescribeTargetHealth) state, aggregated from the nodes (see `aggregate`). */
  status: TargetStatus;
  reason?: string;
  description?: string;
  nodes: NodeView[];
  registeredAt: number;
  deregisteredAt?: number;
  /** When the data plane stopped routing to it and it had no request in flight (AWS's early completion). */
  drainCompletedAt?: number;
  drainEndsAt?: number;
  dpRemoved?: boolean;
  /** Bumped on every (re)registration so that stale timers do nothing. */
  gen: number;
}

interface InFlight {
  abort(): void;
}

interface TgRec {
  arn: string;
  name: string;
  protocol: string;
  protocolVersion: string;
  port: number;
  targetType: string;
  vpcId: string;
  ipAddressType: string;
  hc: HealthCheckConfig;
  matches: (code: number) => boolean;
  attributes: Map<string, string>;
  tags: Map<string, string>;
  targets: Map<string, TargetRec>;
  /** Each node's routing table (propagated view): key → routable entry. */
  dp: Array<Map<string, DpTarget>>;
  inFlight: Map<string, Set<InFlight>>;
  rr: number;
  inUse: boolean;
}

interface LbRec {
  arn: string;
  name: string;
  type: 'application' | 'network';
  dnsName: string;
  createdTime: Date;
  scheme: string;
  ipAddressType: string;
  tags: Map<string, string>;
  /** The HTTP data plane (ALB only; an NLB serves each listener on its own TCP server). */
  server?: DataPlaneServer;
  /** NLB connection outcomes (see nlb.ts). */
  connections: Record<string, number>;
}

interface ListenerRec {
  arn: string;
  lbArn: string;
  port: number;
  protocol: string;
  defaultActions: Action[];
  tags: Map<string, string>;
  tcp?: NlbListenerServer;
  /** HTTPS: the certificate ARNs (the first is the default) and the policy, and the TLS server that stands for it. */
  certificates?: string[];
  sslPolicy?: string;
  https?: DataPlaneServer;
}

interface RuleRec {
  arn: string;
  listenerArn: string;
  priority: number | 'default';
  conditions: RuleCondition[];
  actions: Action[];
  tags: Map<string, string>;
}

/** AWS's default attributes of an HTTP target group of an ALB. */
export const DEFAULT_TARGET_GROUP_ATTRIBUTES: Readonly<Record<string, string>> = {
  'deregistration_delay.timeout_seconds': '300',
  'slow_start.duration_seconds': '0',
  'stickiness.enabled': 'false',
  'stickiness.type': 'lb_cookie',
  'stickiness.lb_cookie.duration_seconds': '86400',
  'stickiness.app_cookie.cookie_name': '',
  'stickiness.app_cookie.duration_seconds': '86400',
  'load_balancing.algorithm.type': 'round_robin',
  'load_balancing.algorithm.anomaly_mitigation': 'off',
  'load_balancing.cross_zone.enabled': 'use_load_balancer_configuration',
  'target_group_health.dns_failover.minimum_healthy_targets.count': '1',
  'target_group_health.dns_failover.minimum_healthy_targets.percentage': 'off',
  'target_group_health.unhealthy_state_routing.minimum_healthy_targets.count': '1',
  'target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage': 'off',
};

/** AWS's default attributes of a TCP target group of an NLB (ip targets). */
export const DEFAULT_TCP_TARGET_GROUP_ATTRIBUTES: Readonly<Record<string, string>> = {
  'deregistration_delay.timeout_seconds': '300',
  'deregistration_delay.connection_termination.enabled': 'false',
  'preserve_client_ip.enabled': 'false',
  'proxy_protocol_v2.enabled': 'false',
  'stickiness.enabled': 'false',
  'stickiness.type': 'source_ip',
  'load_balancing.cross_zone.enabled': 'use_load_balancer_configuration',
  'target_health_state.unhealthy.connection_termination.enabled': 'true',
  'target_health_state.unhealthy.draining_interval_seconds': '0',
  'target_group_health.dns_failover.minimum_healthy_targets.count': '1',
  'target_group_health.dns_failover.minimum_healthy_targets.percentage': 'off',
  'target_group_health.unhealthy_state_routing.minimum_healthy_targets.count': '1',
  'target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage': 'off',
};

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/;

export class AlbCloud {
  readonly clock: LabClock;
  readonly region: string;
  readonly epoch: SimulatedEpoch;
  readonly metrics: AlbMetrics;
  readonly vpcId: string;
  /** Bounded history of target state changes (newest last). Also delivered to onTargetEvent subscribers. */
  readonly history: TargetEvent[] = [];
  private readonly emitter = new EventEmitter();
  private readonly network: PodNetwork;
  private readonly idleTimeoutSeconds: number;
  private readonly lbs = new Map<string, LbRec>();
  private readonly listeners = new Map<string, ListenerRec>();
  private readonly rules = new Map<string, RuleRec>();
  /** Tags on listeners' default rules, by listener ARN. */
  private readonly defaultRules = new Map<string, Map<string, string>>();
  private readonly tgs = new Map<string, TgRec>();
  /** The lab CA and the certificates of HTTPS listeners. */
  readonly certificates = new AlbCertificates();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** Load-balancer nodes (each with its own routing table and health checker). */
  readonly nodeCount: number;
  private readonly random: { weights: LabRandom; nodes: LabRandom; checks: LabRandom; ids: LabRandom };

  constructor(options: AlbCloudOptions) {
    this.emitter.setMaxListeners(0);
    this.clock = options.clock;
    this.region = options.region;
    this.vpcId = options.vpcId ?? 'vpc-0a1b2c3d4e5f60718';
    this.network = options.network;
    this.idleTimeoutSeconds = options.idleTimeoutSeconds ?? 60;
    this.epoch = new SimulatedEpoch(options.epochOriginMs ?? Date.now(), options.clock.timings.timeScale);
    const clock = options.clock;
    const lagged = clock.configured('cloudwatchLagSeconds') !== 0;
    this.metrics = new AlbMetrics(this.epoch, clock.timings.metricPeriodSeconds || 60, lagged ? () => clock.delay('cloudwatchLagSeconds') : undefined);
    this.nodeCount = Math.max(1, Math.floor(options.clock.timings.albNodes ?? 1));
    const r = options.clock.random.fork('alb');
    this.random = { weights: r.fork('weights'), nodes: r.fork('nodes'), checks: r.fork('checks'), ids: r.fork('ids') };
  }

  /** Subscribes to target state changes (see TargetEvent); returns the unsubscribe function. */
  onTargetEvent(fn: (e: TargetEvent) => void): () => void {
    this.emitter.on('target', fn);
    return () => this.emitter.off('target', fn);
  }

  /** "Now" on the simulated epoch, in ms (what GetMetricData's StartTime/EndTime refer to). */
  simulatedNow(): number {
    return this.epoch.nowMs();
  }

  /** Base URL of the load balancer's HTTP data plane (its port-80 listener), e.g. `http://127.0.0.1:41234`. */
  dataPlaneUrl(lbArn: string): string {
    const lb = this.lbs.get(lbArn);
    if (!lb) throw new AwsApiError('LoadBalancerNotFound', `Load balancer '${lbArn}' not found`);
    if (!lb.server) throw new AwsApiError('ValidationError', `Load balancer '${lbArn}' is a network load balancer: it has no HTTP data plane (see its listeners)`);
    return lb.server.url;
  }

  /** Idle keep-alive connections from the load balancer to its targets, by ip:port (empty without `albKeepAlive`). */
  pooledConnections(lbArn: string): Record<string, number> {
    return this.lbs.get(lbArn)?.server?.pooledConnections() ?? {};
  }

  /** The data plane URL for a DNS name (e.g. an Ingress status hostname), or undefined. */
  dataPlaneUrlForHostname(hostname: string): string | undefined {
    for (const lb of this.lbs.values()) if (lb.dnsName === hostname.toLowerCase()) return lb.server?.url;
    return undefined;
  }

  /** The ARN of the load balancer with this DNS name (e.g. an Ingress status hostname), or undefined. */
  loadBalancerArnForHostname(hostname: string): string | undefined {
    for (const [arn, lb] of this.lbs) if (lb.dnsName === hostname.toLowerCase()) return arn;
    return undefined;
  }

  /** Every load balancer with its type, DNS name, listeners (and the local address serving each), tags and target groups. */
  loadBalancerSummaries(): LoadBalancerSummary[] {
    return [...this.lbs.values()].map((lb) => {
      const tgs = new Set<string>();
      const listeners = [...this.listeners.values()]
        .filter((l) => l.lbArn === lb.arn)
        .sort((a, b) => a.port - b.port)
        .map((l) => {
          for (const a of l.defaultActions) for (const t of actionTargetGroups(a)) tgs.add(t);
          for (const r of this.rulesOf(l.arn)) for (const a of r.actions) for (const t of actionTargetGroups(a)) tgs.add(t);
          return { port: l.port, protocol: l.protocol, address: this.listenerAddress(lb, l) };
        });
      return { arn: lb.arn, name: lb.name, type: lb.type, dnsName: lb.dnsName, listeners, tags: Object.fromEntries(lb.tags), targetGroupArns: [...tgs] };
    });
  }

  /** Request totals of a load balancer or target group ARN, plus requests in flight per target (`ip:port`). */
  stats(arn: string): TrafficCounters & { inFlight: Record<string, number> } {
    const inFlight: Record<string, number> = {};
    const tgs = this.tgs.has(arn) ? [this.tgs.get(arn)!] : [...this.tgs.values()].filter((tg) => this.tgLoadBalancers(tg.arn).includes(arn));
    for (const tg of tgs) for (const [k, s] of tg.inFlight) if (s.size > 0) inFlight[k] = (inFlight[k] ?? 0) + s.size;
    return { ...this.metrics.counters(arn), inFlight };
  }

  /** Internal view of a target (times included), for the lab's timeline; undefined when not registered. */
  targetRecord(tgArn: string, id: string, port: number):
    | { status: TargetStatus; reason?: string; registeredAt: number; deregisteredAt?: number; drainCompletedAt?: number; drainEndsAt?: number; routable: boolean }
    | undefined {
    const tg = this.tgs.get(tgArn);
    const t = tg?.targets.get(`${id}:${port}`);
    if (!tg || !t) return undefined;
    const routable = tg.dp.some((m) => m.has(t.key));
    return {
      status: t.status,
      ...(t.reason ? { reason: t.reason } : {}),
      registeredAt: t.registeredAt,
      ...(t.deregisteredAt !== undefined ? { deregisteredAt: t.deregisteredAt } : {}),
      ...(t.drainCompletedAt !== undefined ? { drainCompletedAt: t.drainCompletedAt } : {}),
      ...(t.drainEndsAt !== undefined ? { drainEndsAt: t.drainEndsAt } : {}),
      routable,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const tg of this.tgs.values()) for (const t of tg.targets.values()) this.stopChecks(t);
    await Promise.all([...this.lbs.values()].map((lb) => lb.server?.close()));
    await Promise.all([...this.listeners.values()].map((l) => l.tcp?.close() ?? l.https?.close()));
  }

  private listenerAddress(lb: LbRec, l: ListenerRec): string {
    return l.tcp?.address ?? l.https?.url ?? lb.server?.url ?? '';
  }

  // ------------------------------------------------------------------ load balancers

  async createLoadBalancer(input: CreateLoadBalancerInput): Promise<CreateLoadBalancerOutput> {
    const name = str(input.Name);
    if (!NAME_RE.test(name) || name.startsWith('internal-')) {
      throw new AwsApiError('ValidationError', `The load balancer name '${name}' is not valid: up to 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen`);
    }
    const type = input.Type ?? 'application';
    if (type !== 'application' && type !== 'network') throw new AwsApiError('ValidationError', `The lab emulates application and network load balancers, not '${type}'`);
    const scheme = input.Scheme ?? 'internet-facing';
    if (scheme !== 'internet-facing' && scheme !== 'internal') throw new AwsApiError('ValidationError', `1 validation error detected: Value '${scheme}' at 'scheme' failed to satisfy constraint: Member must satisfy enum value set: [internet-facing, internal]`);
    for (const lb of this.lbs.values()) {
      if (lb.name !== name) continue;
      if (lb.type !== type || lb.scheme !== scheme) throw new AwsApiError('DuplicateLoadBalancerName', `A load balancer with the same name '${name}' exists, but with different settings`);
      return { LoadBalancers: [this.lbView(lb)] };
    }
    const arn = loadBalancerArn(this.region, name, randomHex16(this.random.ids), type);
    let server: DataPlaneServer | undefined;
    if (type === 'application') {
      server = new DataPlaneServer(this.dataPlaneHost(), arn);
      await server.listen();
    }
    const lb: LbRec = {
      arn,
      name,
      dnsName: type === 'network' ? networkLoadBalancerDnsName(this.region, name, this.random.ids) : loadBalancerDnsName(this.region, name, this.random.ids),
      createdTime: new Date(),
      type,
      connections: {},
      scheme,
      ipAddressType: input.IpAddressType ?? 'ipv4',
      tags: tagMap(input.Tags),
      ...(server ? { server } : {}),
    };
    this.lbs.set(arn, lb);
    return { LoadBalancers: [this.lbView(lb)] };
  }

  async deleteLoadBalancer(input: DeleteLoadBalancerInput): Promise<Record<string, never>> {
    const lb = this.lbs.get(str(input.LoadBalancerArn));
    if (!lb) return {}; // deleting a missing load balancer succeeds
    for (const l of [...this.listeners.values()]) if (l.lbArn === lb.arn) this.dropListener(l.arn);
    this.lbs.delete(lb.arn);
    await lb.server?.close();
    this.refreshUsage();
    return {};
  }

  async describeLoadBalancers(input: DescribeLoadBalancersInput): Promise<DescribeLoadBalancersOutput> {
    const arns = list(input.LoadBalancerArns).map(str);
    const names = list(input.Names).map(str);
    if (arns.length && names.length) throw new AwsApiError('ValidationError', 'Load balancer names and load balancer ARNs cannot be specified at the same time');
    let items = [...this.lbs.values()];
    if (arns.length) items = arns.map((a) => this.lbs.get(a) ?? notFoundLb());
    if (names.length) items = names.map((n) => items.find((lb) => lb.name === n) ?? notFoundLb());
    const { page, next } = paginate(items, input.Marker, input.PageSize, 400);
    return { LoadBalancers: page.map((lb) => this.lbView(lb)), ...(next ? { NextMarker: next } : {}) };
  }

  private lbView(lb: LbRec): LoadBalancer {
    return {
      LoadBalancerArn: lb.arn,
      DNSName: lb.dnsName,
      CanonicalHostedZoneId: canonicalHostedZoneId(this.region),
      CreatedTime: lb.createdTime,
      LoadBalancerName: lb.name,
      Scheme: lb.scheme as LoadBalancer['Scheme'],
      VpcId: this.vpcId,
      State: { Code: 'active' },
      Type: lb.type,
      AvailabilityZones: ['a', 'b'].map((z, i) => ({ ZoneName: `${this.region}${z}`, SubnetId: `subnet-0lab0000000000${i}` })),
      SecurityGroups: ['sg-0lab00000000000001'],
      IpAddressType: lb.ipAddressType as LoadBalancer['IpAddressType'],
    };
  }

  // ------------------------------------------------------------------ listeners and rules

  async createListener(input: CreateListenerInput): Promise<CreateListenerOutput> {
    const lb = this.lbs.get(str(input.LoadBalancerArn));
    if (!lb) notFoundLb();
    const port = int(input.Port, 'Port');
    if (port < 1 || port > 65535) throw new AwsApiError('ValidationError', `Listener port '${port}' must be between 1 and 65535`);
    const protocol = str(input.Protocol);
    if (!protocol) throw new AwsApiError('ValidationError', 'A listener protocol must be specified');
    if (lb!.type === 'application' && protocol !== 'HTTP' && protocol !== 'HTTPS') throw new AwsApiError('ValidationError', `The lab's ALB emulates HTTP and HTTPS listeners, not '${protocol}'`);
    const certificates = list(input.Certificates).map((c) => str(c.CertificateArn)).filter((c) => c !== '');
    if (protocol === 'HTTPS' && certificates.length === 0) throw new AwsApiError('ValidationError', 'A certificate must be specified for HTTPS listeners');
    if (lb!.type === 'network' && protocol !== 'TCP') throw new AwsApiError('ValidationError', `The lab's NLB emulates TCP listeners only, not '${protocol}'`);
    for (const l of this.listeners.values()) {
      if (l.lbArn === lb!.arn && l.port === port) throw new AwsApiError('DuplicateListener', 'A listener already exists on this port for this load balancer');
    }
    const actions = this.checkActions(list(input.DefaultActions), lb!, protocol);
    const l: ListenerRec = { arn: listenerArn(lb!.arn, randomHex16(this.random.ids)), lbArn: lb!.arn, port, protocol, defaultActions: actions, tags: tagMap(input.Tags) };
    if (lb!.type === 'network') {
      l.tcp = new NlbListenerServer(this.nlbHost(), lb!.arn, l.arn);
      await l.tcp.listen();
    }
    if (protocol === 'HTTPS') {
      l.certificates = certificates;
      l.sslPolicy = str(input.SslPolicy) || 'ELBSecurityPolicy-2016-08';
      l.https = await httpsListenerServer(this.dataPlaneHost(), lb!.arn, l, this.certificates, () => this.tlsNames(l));
    }
    this.listeners.set(l.arn, l);
    this.refreshUsage();
    return { Listeners: [this.listenerView(l)] };
  }

  async modifyListener(input: ModifyListenerInput): Promise<ModifyListenerOutput> {
    const l = this.listeners.get(str(input.ListenerArn));
    if (!l) throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
    if (input.DefaultActions !== undefined) l.defaultActions = this.checkActions(list(input.DefaultActions), this.lbs.get(l.lbArn)!, l.protocol);
    if (input.Port !== undefined) l.port = int(input.Port, 'Port');
    if (input.Certificates !== undefined && l.protocol === 'HTTPS') {
      const certificates = list(input.Certificates).map((c) => str(c.CertificateArn)).filter((c) => c !== '');
      if (certificates.length > 0) l.certificates = certificates;
    }
    if (input.SslPolicy !== undefined && l.protocol === 'HTTPS') l.sslPolicy = str(input.SslPolicy);
    this.refreshUsage();
    return { Listeners: [this.listenerView(l)] };
  }

  async deleteListener(input: DeleteListenerInput): Promise<Record<string, never>> {
    const arn = str(input.ListenerArn);
    if (!this.listeners.has(arn)) throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
    this.dropListener(arn);
    this.refreshUsage();
    return {};
  }

  private dropListener(arn: string): void {
    for (const r of [...this.rules.values()]) if (r.listenerArn === arn) this.rules.delete(r.arn);
    void this.listeners.get(arn)?.tcp?.close();
    void this.listeners.get(arn)?.https?.close();
    this.defaultRules.delete(arn);
    this.listeners.delete(arn);
  }

  async describeListeners(input: DescribeListenersInput): Promise<DescribeListenersOutput> {
    const arns = list(input.ListenerArns).map(str);
    let items: ListenerRec[];
    if (input.LoadBalancerArn) {
      if (!this.lbs.has(str(input.LoadBalancerArn))) notFoundLb();
      items = [...this.listeners.values()].filter((l) => l.lbArn === input.LoadBalancerArn);
    } else if (arns.length) {
      items = arns.map((a) => {
        const l = this.listeners.get(a);
        if (!l) throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
        return l;
      });
    } else {
      throw new AwsApiError('ValidationError', 'You must specify either listener ARNs or a load balancer ARN');
    }
    const { page, next } = paginate(items, input.Marker, input.PageSize, 400);
    return { Listeners: page.map((l) => this.listenerView(l)), ...(next ? { NextMarker: next } : {}) };
  }

  private listenerView(l: ListenerRec): Listener {
    return {
      ListenerArn: l.arn,
      LoadBalancerArn: l.lbArn,
      Port: l.port,
      Protocol: l.protocol as Listener['Protocol'],
      DefaultActions: structuredClone(l.defaultActions),
      ...(l.certificates ? { Certificates: [{ CertificateArn: l.certificates[0]! }], SslPolicy: l.sslPolicy } : {}),
    };
  }

  /** The names an HTTPS listener's certificate covers in the lab: every host its rules match, and the ALB's DNS name. */
  private tlsNames(l: ListenerRec): string[] {
    const names = new Set<string>();
    for (const r of this.rulesOf(l.arn)) {
      for (const c of r.conditions) if (c.Field === 'host-header') for (const v of c.HostHeaderConfig?.Values ?? c.Values ?? []) names.add(v.toLowerCase());
    }
    const dns = this.lbs.get(l.lbArn)?.dnsName;
    if (dns) names.add(dns);
    return [...names];
  }

  async createRule(input: CreateRuleInput): Promise<CreateRuleOutput> {
    const l = this.listeners.get(str(input.ListenerArn));
    if (!l) throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
    if (this.lbs.get(l.lbArn)?.type === 'network') throw new AwsApiError('ValidationError', 'Listener rules are not supported on a Network Load Balancer listener');
    const priority = int(input.Priority, 'Priority');
    if (priority < 1 || priority > 50000) throw new AwsApiError('ValidationError', `Priority '${priority}' must be between 1 and 50000`);
    for (const r of this.rules.values()) if (r.listenerArn === l.arn && r.priority === priority) throw new AwsApiError('PriorityInUse', `Priority '${priority}' is currently in use`);
    const conditions = list(input.Conditions) as RuleCondition[];
    if (conditions.length === 0) throw new AwsApiError('ValidationError', 'A rule must have at least one condition');
    const r: RuleRec = { arn: ruleArn(l.arn, randomHex16(this.random.ids)), listenerArn: l.arn, priority, conditions: normalizeConditions(conditions), actions: this.checkActions(list(input.Actions), this.lbs.get(l.lbArn)!, l.protocol), tags: tagMap(input.Tags) };
    this.rules.set(r.arn, r);
    this.refreshUsage();
    return { Rules: [this.ruleView(r)] };
  }

  async modifyRule(input: ModifyRuleInput): Promise<ModifyRuleOutput> {
    const r = this.rules.get(str(input.RuleArn));
    if (!r) throw new AwsApiError('RuleNotFound', 'One or more rules not found');
    if (input.Conditions !== undefined) r.conditions = normalizeConditions(list(input.Conditions) as RuleCondition[]);
    if (input.Actions !== undefined) {
      const l = this.listeners.get(r.listenerArn)!;
      r.actions = this.checkActions(list(input.Actions), this.lbs.get(l.lbArn)!, l.protocol);
    }
    this.refreshUsage();
    return { Rules: [this.ruleView(r)] };
  }

  async setRulePriorities(input: SetRulePrioritiesInput): Promise<SetRulePrioritiesOutput> {
    const changes = list(input.RulePriorities);
    const out: Rule[] = [];
    for (const c of changes) {
      const r = this.rules.get(str(c.RuleArn));
      if (!r) throw new AwsApiError('RuleNotFound', 'One or more rules not found');
      r.priority = int(c.Priority, 'Priority');
      out.push(this.ruleView(r));
    }
    return { Rules: out };
  }

  async deleteRule(input: DeleteRuleInput): Promise<Record<string, never>> {
    const r = this.rules.get(str(input.RuleArn));
    if (!r) throw new AwsApiError('RuleNotFound', 'One or more rules not found');
    if (r.priority === 'default') throw new AwsApiError('OperationNotPermitted', 'Default rules cannot be deleted');
    this.rules.delete(r.arn);
    this.refreshUsage();
    return {};
  }

  async describeRules(input: DescribeRulesInput): Promise<DescribeRulesOutput> {
    let items: Array<RuleRec>;
    const arns = list(input.RuleArns).map(str);
    if (input.ListenerArn) {
      const l = this.listeners.get(str(input.ListenerArn));
      if (!l) throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
      items = [...this.rulesOf(l.arn)];
      items.push({ arn: ruleArn(l.arn, 'default0000000000'), listenerArn: l.arn, priority: 'default', conditions: [], actions: l.defaultActions, tags: new Map() });
    } else if (arns.length) {
      items = arns.map((a) => {
        const r = this.rules.get(a);
        if (!r) throw new AwsApiError('RuleNotFound', 'One or more rules not found');
        return r;
      });
    } else {
      throw new AwsApiError('ValidationError', 'You must specify either listener ARN or rule ARNs');
    }
    const { page, next } = paginate(items, input.Marker, input.PageSize, 400);
    return { Rules: page.map((r) => this.ruleView(r)), ...(next ? { NextMarker: next } : {}) };
  }

  private rulesOf(listenerArn: string): RuleRec[] {
    return [...this.rules.values()].filter((r) => r.listenerArn === listenerArn).sort((a, b) => Number(a.priority) - Number(b.priority));
  }

  private ruleView(r: RuleRec): Rule {
    return {
      RuleArn: r.arn,
      Priority: String(r.priority),
      IsDefault: r.priority === 'default',
      Conditions: structuredClone(r.conditions),
      Actions: structuredClone(r.actions),
    };
  }

  /** Validates a listener's or rule's actions as ELBv2 does (target groups exist, fit the listener, one load balancer each). */
  private checkActions(actions: Action[], lb: LbRec, listenerProtocol: string): Action[] {
    if (actions.length === 0) throw new AwsApiError('ValidationError', 'At least one action must be specified');
    const out = structuredClone(actions).map((a, i) => ({ ...a, Order: a.Order !== undefined ? Number(a.Order) : i + 1 }));
    for (const a of out) {
      if (lb.type === 'network' && a.Type !== 'forward') throw new AwsApiError('ValidationError', `Action type '${String(a.Type)}' is not supported on a Network Load Balancer listener; use 'forward'`);
      for (const arn of actionTargetGroups(a)) {
        const tg = this.tgs.get(arn);
        if (!tg) throw new AwsApiError('TargetGroupNotFound', `Target groups '${arn}' not found`);
        const tcpTg = tg.protocol === 'TCP';
        if (tcpTg !== (listenerProtocol === 'TCP')) {
          throw new AwsApiError('IncompatibleProtocols', `The protocol '${tg.protocol}' of target group '${arn}' is not compatible with the listener protocol '${listenerProtocol}'`);
        }
        const others = this.tgLoadBalancers(arn).filter((x) => x !== lb.arn);
        if (others.length > 0) throw new AwsApiError('TargetGroupAssociationLimit', `The following target groups cannot be associated with more than one load balancer: ${arn}`);
      }
      if (a.ForwardConfig?.TargetGroups) {
        a.ForwardConfig.TargetGroups = list(a.ForwardConfig.TargetGroups).map((t) => ({ ...t, ...(t.Weight !== undefined ? { Weight: Number(t.Weight) } : {}) }));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ target groups

  async createTargetGroup(input: CreateTargetGroupInput): Promise<CreateTargetGroupOutput> {
    const name = str(input.Name);
    if (!NAME_RE.test(name)) throw new AwsApiError('ValidationError', `Target group name '${name}' cannot be longer than '32' characters and may contain only alphanumeric characters or hyphens`);
    const targetType = str(input.TargetType) || 'instance';
    if (!['instance', 'ip'].includes(targetType)) throw new AwsApiError('ValidationError', `The lab emulates target types 'instance' and 'ip', not '${targetType}'`);
    const protocol = str(input.Protocol);
    if (!protocol) throw new AwsApiError('ValidationError', `A protocol must be specified for a target group with target type '${targetType}'`);
    if (!['HTTP', 'HTTPS', 'TCP', 'TLS', 'UDP', 'TCP_UDP', 'GENEVE'].includes(protocol)) {
      throw new AwsApiError('ValidationError', `1 validation error detected: Value '${protocol}' at 'protocol' failed to satisfy constraint: Member must satisfy enum value set: [HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP, GENEVE]`);
    }
    if (protocol !== 'HTTP' && protocol !== 'TCP') throw new AwsApiError('ValidationError', `The lab emulates target groups with protocol HTTP (ALB) and TCP (NLB), not '${protocol}'`);
    if (input.Port === undefined || (input.Port as unknown) === '') throw new AwsApiError('ValidationError', `A port must be specified for a target group with target type '${targetType}'`);
    const port = int(input.Port, 'Port');
    if (port < 1 || port > 65535) throw new AwsApiError('ValidationError', `Target group port '${port}' must be between 1 and 65535`);
    const tcp = protocol === 'TCP';
    if (tcp && input.ProtocolVersion !== undefined) throw new AwsApiError('ValidationError', `A protocol version cannot be specified for a target group with protocol '${protocol}'`);
    const hc = this.healthCheckFrom(input, tcp ? AWS_API_TCP_HEALTH_CHECK_DEFAULTS : AWS_API_HEALTH_CHECK_DEFAULTS, protocol);
    const vpcId = str(input.VpcId) || this.vpcId;
    if (!/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) throw new AwsApiError('ValidationError', `The VPC ID '${vpcId}' is not valid`);
    for (const tg of this.tgs.values()) {
      if (tg.name === name) {
        if (tg.targetType !== targetType || tg.port !== port || tg.protocol !== protocol || tg.vpcId !== vpcId) {
          throw new AwsApiError('DuplicateTargetGroupName', `A target group with the same name '${name}' exists, but with different settings`);
        }
        return { TargetGroups: [this.tgView(tg)] };
      }
    }
    const arn = targetGroupArn(this.region, name, randomHex16(this.random.ids));
    const tg: TgRec = {
      arn,
      name,
      protocol,
      protocolVersion: tcp ? '' : str(input.ProtocolVersion) || 'HTTP1',
      port,
      targetType,
      vpcId,
      ipAddressType: str(input.IpAddressType) || 'ipv4',
      hc,
      matches: parseMatcher(hc.matcher, tcp ? 599 : 499),
      attributes: new Map(Object.entries(tcp ? DEFAULT_TCP_TARGET_GROUP_ATTRIBUTES : DEFAULT_TARGET_GROUP_ATTRIBUTES)),
      tags: tagMap(input.Tags),
      targets: new Map(),
      dp: Array.from({ length: this.nodeCount }, () => new Map<string, DpTarget>()),
      inFlight: new Map(),
      rr: 0,
      inUse: false,
    };
    this.tgs.set(arn, tg);
    return { TargetGroups: [this.tgView(tg)] };
  }

  private healthCheckFrom(input: Partial<CreateTargetGroupInput & ModifyTargetGroupInput>, base: HealthCheckConfig, tgProtocol: string): HealthCheckConfig {
    const hc: HealthCheckConfig = { ...base };
    const tcp = tgProtocol === 'TCP';
    if (input.HealthCheckProtocol !== undefined) {
      const p = str(input.HealthCheckProtocol);
      if (!(tcp ? ['TCP', 'HTTP', 'HTTPS'] : ['HTTP', 'HTTPS']).includes(p)) {
        throw new AwsApiError('ValidationError', `Health check protocol '${p}' is not supported for target groups with the ${tgProtocol} protocol`);
      }
      if (p !== hc.protocol && (p === 'TCP' || hc.protocol === 'TCP') && tcp) {
        // Switching an NLB health check between TCP and HTTP: the path and matcher defaults of the new protocol apply.
        hc.path = '/';
        hc.matcher = '200-399';
      }
      hc.protocol = p as HealthCheckConfig['protocol'];
    }
    if (input.HealthCheckPort !== undefined) hc.port = str(input.HealthCheckPort);
    if (input.HealthCheckPath !== undefined) hc.path = str(input.HealthCheckPath);
    if (input.HealthCheckEnabled !== undefined) hc.enabled = bool(input.HealthCheckEnabled);
    if (input.HealthCheckIntervalSeconds !== undefined) hc.intervalSeconds = int(input.HealthCheckIntervalSeconds, 'HealthCheckIntervalSeconds');
    if (input.HealthCheckTimeoutSeconds !== undefined) hc.timeoutSeconds = int(input.HealthCheckTimeoutSeconds, 'HealthCheckTimeoutSeconds');
    if (input.HealthyThresholdCount !== undefined) hc.healthyThreshold = int(input.HealthyThresholdCount, 'HealthyThresholdCount');
    if (input.UnhealthyThresholdCount !== undefined) hc.unhealthyThreshold = int(input.UnhealthyThresholdCount, 'UnhealthyThresholdCount');
    if (input.Matcher?.HttpCode !== undefined) hc.matcher = str(input.Matcher.HttpCode);
    const range = (v: number, lo: number, hi: number, what: string): void => {
      if (!(v >= lo && v <= hi)) throw new AwsApiError('ValidationError', `${what} must be between ${lo} and ${hi}, not ${v}`);
    };
    range(hc.intervalSeconds, 5, 300, 'Health check interval');
    range(hc.timeoutSeconds, 2, 120, 'Health check timeout');
    range(hc.healthyThreshold, 2, 10, 'Healthy threshold count');
    range(hc.unhealthyThreshold, 2, 10, 'Unhealthy threshold count');
    // ALB: the timeout must be shorter than the interval; NLB: it may equal it (LBC's NLB defaults are 10 s and 10 s).
    if (tcp ? hc.timeoutSeconds > hc.intervalSeconds : hc.timeoutSeconds >= hc.intervalSeconds) {
      throw new AwsApiError('ValidationError', 'Health check interval must be greater than the timeout.');
    }
    if (hc.protocol === 'TCP' && (input.HealthCheckPath !== undefined || input.Matcher?.HttpCode !== undefined)) {
      throw new AwsApiError('ValidationError', 'Health check path and matcher cannot be specified for a TCP health check');
    }
    if (!hc.path.startsWith('/')) throw new AwsApiError('ValidationError', `Health check path '${hc.path}' must begin with a '/' character`);
    if (hc.port !== 'traffic-port' && !(Number(hc.port) >= 1 && Number(hc.port) <= 65535)) throw new AwsApiError('ValidationError', `Health check port '${hc.port}' must be 'traffic-port' or between 1 and 65535`);
    try {
      parseMatcher(hc.matcher, tcp ? 599 : 499);
    } catch (e) {
      throw new AwsApiError('ValidationError', (e as Error).message);
    }
    return hc;
  }

  async modifyTargetGroup(input: ModifyTargetGroupInput): Promise<ModifyTargetGroupOutput> {
    const tg = this.mustTg(input.TargetGroupArn);
    const hc = this.healthCheckFrom(input, tg.hc, tg.protocol);
    const intervalChanged = hc.intervalSeconds !== tg.hc.intervalSeconds;
    tg.hc = hc;
    tg.matches = parseMatcher(hc.matcher, tg.protocol === 'TCP' ? 599 : 499);
    if (intervalChanged) {
      for (const t of tg.targets.values()) {
        t.nodes.forEach((n, i) => {
          if (!n.checkTimer) return;
          this.stopCheck(n);
          this.startChecks(tg, t, i);
        });
      }
    }
    return { TargetGroups: [this.tgView(tg)] };
  }

  async deleteTargetGroup(input: DeleteTargetGroupInput): Promise<Record<string, never>> {
    const arn = str(input.TargetGroupArn);
    const tg = this.tgs.get(arn);
    if (!tg) return {};
    if (this.tgReferenced(arn)) throw new AwsApiError('ResourceInUse', `Target group '${arn}' is currently in use by a listener or a rule`);
    for (const t of tg.targets.values()) this.stopChecks(t);
    for (const set of tg.inFlight.values()) for (const f of set) f.abort();
    this.tgs.delete(arn);
    return {};
  }

  async describeTargetGroups(input: DescribeTargetGroupsInput): Promise<DescribeTargetGroupsOutput> {
    const arns = list(input.TargetGroupArns).map(str);
    const names = list(input.Names).map(str);
    const filters = [input.LoadBalancerArn ? 1 : 0, arns.length ? 1 : 0, names.length ? 1 : 0].reduce((a, b) => a + b, 0);
    if (filters > 1) throw new AwsApiError('ValidationError', 'A load balancer ARN, target group ARNs, or target group names can be specified, but not more than one of them');
    let items = [...this.tgs.values()];
    if (input.LoadBalancerArn) {
      const lbArn = str(input.LoadBalancerArn);
      if (!this.lbs.has(lbArn)) notFoundLb();
      items = items.filter((tg) => this.tgLoadBalancers(tg.arn).includes(lbArn));
    } else if (arns.length) {
      items = arns.map((a) => this.tgs.get(a) ?? notFoundTgs());
    } else if (names.length) {
      items = names.map((n) => items.find((tg) => tg.name === n) ?? notFoundTgs());
    }
    const { page, next } = paginate(items, input.Marker, input.PageSize, 400);
    return { TargetGroups: page.map((tg) => this.tgView(tg)), ...(next ? { NextMarker: next } : {}) };
  }

  /**
   * DescribeTargetGroups of one target group by ARN or name, synchronously (for the LBC's admission webhooks, which
   * run inside a store write). Throws the AwsApiError DescribeTargetGroups would; bypasses the account's faults.
   */
  lookupTargetGroup(q: { arn?: string; name?: string }): TargetGroup {
    const tg = q.arn ? this.tgs.get(q.arn) : [...this.tgs.values()].find((t) => t.name === q.name);
    if (!tg) notFoundTgs();
    return this.tgView(tg);
  }

  private tgView(tg: TgRec): TargetGroup {
    return {
      TargetGroupArn: tg.arn,
      TargetGroupName: tg.name,
      Protocol: tg.protocol as TargetGroup['Protocol'],
      Port: tg.port,
      VpcId: tg.vpcId,
      HealthCheckProtocol: tg.hc.protocol,
      HealthCheckPort: tg.hc.port,
      HealthCheckEnabled: tg.hc.enabled,
      HealthCheckIntervalSeconds: tg.hc.intervalSeconds,
      HealthCheckTimeoutSeconds: tg.hc.timeoutSeconds,
      HealthyThresholdCount: tg.hc.healthyThreshold,
      UnhealthyThresholdCount: tg.hc.unhealthyThreshold,
      ...(tg.hc.protocol !== 'TCP' ? { HealthCheckPath: tg.hc.path, Matcher: { HttpCode: tg.hc.matcher } } : {}),
      LoadBalancerArns: this.tgLoadBalancers(tg.arn),
      TargetType: tg.targetType as TargetGroup['TargetType'],
      ...(tg.protocolVersion ? { ProtocolVersion: tg.protocolVersion } : {}),
      IpAddressType: tg.ipAddressType as TargetGroup['IpAddressType'],
    };
  }

  async describeTargetGroupAttributes(input: DescribeTargetGroupAttributesInput): Promise<DescribeTargetGroupAttributesOutput> {
    const tg = this.mustTg(input.TargetGroupArn);
    return { Attributes: [...tg.attributes].map(([Key, Value]) => ({ Key, Value })) };
  }

  async modifyTargetGroupAttributes(input: ModifyTargetGroupAttributesInput): Promise<ModifyTargetGroupAttributesOutput> {
    const tg = this.mustTg(input.TargetGroupArn);
    const attrs = list(input.Attributes).map((a) => ({ Key: str(a.Key), Value: a.Value === undefined ? '' : str(a.Value) }));
    if (attrs.length === 0) throw new AwsApiError('ValidationError', 'At least one attribute must be specified');
    for (const a of attrs) validateAttribute(a.Key, a.Value);
    for (const a of attrs) tg.attributes.set(a.Key, a.Value);
    return { Attributes: [...tg.attributes].map(([Key, Value]) => ({ Key, Value })) };
  }

  // ------------------------------------------------------------------ tags

  async describeTags(input: DescribeTagsInput): Promise<DescribeTagsOutput> {
    const arns = list(input.ResourceArns).map(str);
    if (arns.length === 0 || arns.length > 20) throw new AwsApiError('ValidationError', 'Between 1 and 20 resource ARNs must be specified');
    return { TagDescriptions: arns.map((arn) => ({ ResourceArn: arn, Tags: [...this.tagsOf(arn)].map(([Key, Value]) => ({ Key, Value })) })) };
  }

  async addTags(input: AddTagsInput): Promise<Record<string, never>> {
    for (const arn of list(input.ResourceArns).map(str)) {
      const tags = this.tagsOf(arn);
      for (const t of list(input.Tags)) tags.set(str(t.Key), t.Value === undefined ? '' : str(t.Value));
    }
    return {};
  }

  async removeTags(input: RemoveTagsInput): Promise<Record<string, never>> {
    for (const arn of list(input.ResourceArns).map(str)) {
      const tags = this.tagsOf(arn);
      for (const k of list(input.TagKeys)) tags.delete(str(k));
    }
    return {};
  }

  private tagsOf(arn: string): Map<string, string> {
    const holder = this.lbs.get(arn) ?? this.tgs.get(arn) ?? this.listeners.get(arn) ?? this.rules.get(arn) ?? this.defaultRuleTags(arn);
    if (!holder) {
      if (arn.includes(':targetgroup/')) notFoundTgs();
      if (arn.includes(':loadbalancer/')) notFoundLb();
      if (arn.includes(':listener-rule/')) throw new AwsApiError('RuleNotFound', 'One or more rules not found');
      throw new AwsApiError('ListenerNotFound', 'One or more listeners not found');
    }
    return holder.tags;
  }

  /** A listener's default rule (DescribeRules lists it; the real controller tags and reads its tags too). */
  private defaultRuleTags(arn: string): { tags: Map<string, string> } | undefined {
    const l = [...this.listeners.values()].find((x) => ruleArn(x.arn, 'default0000000000') === arn);
    if (!l) return undefined;
    let tags = this.defaultRules.get(l.arn);
    if (!tags) {
      tags = new Map();
      this.defaultRules.set(l.arn, tags);
    }
    return { tags };
  }

  // ------------------------------------------------------------------ targets

  async registerTargets(input: RegisterTargetsInput): Promise<Record<string, never>> {
    const tg = this.mustTg(input.TargetGroupArn);
    const targets = this.checkTargets(tg, list(input.Targets));
    if (targets.length === 0) throw new AwsApiError('ValidationError', 'At least one target must be specified');
    for (const d of targets) this.register(tg, d);
    return {};
  }

  async deregisterTargets(input: DeregisterTargetsInput): Promise<Record<string, never>> {
    const tg = this.mustTg(input.TargetGroupArn);
    const targets = this.checkTargets(tg, list(input.Targets));
    if (targets.length === 0) throw new AwsApiError('ValidationError', 'At least one target must be specified');
    for (const d of targets) this.deregister(tg, d);
    return {};
  }

  async describeTargetHealth(input: DescribeTargetHealthInput): Promise<DescribeTargetHealthOutput> {
    const tg = this.mustTg(input.TargetGroupArn);
    const asked = list(input.Targets);
    if (asked.length === 0) {
      return { TargetHealthDescriptions: [...tg.targets.values()].map((t) => this.healthView(tg, t)) };
    }
    const out: TargetHealthDescription[] = [];
    for (const d of this.checkTargets(tg, asked)) {
      const t = tg.targets.get(`${d.id}:${d.port}`);
      if (t) out.push(this.healthView(tg, t));
      else {
        out.push({
          Target: { Id: d.id, Port: d.port, ...(d.az ? { AvailabilityZone: d.az } : {}) },
          HealthCheckPort: tg.hc.port === 'traffic-port' ? String(d.port) : tg.hc.port,
          TargetHealth: { State: 'unused', Reason: 'Target.NotRegistered', Description: 'Target is not registered to the target group' },
        });
      }
    }
    return { TargetHealthDescriptions: out };
  }

  private healthView(tg: TgRec, t: TargetRec): TargetHealthDescription {
    const base: TargetHealthDescription = {
      Target: { Id: t.id, Port: t.port, ...(t.az ? { AvailabilityZone: t.az } : {}) },
      HealthCheckPort: tg.hc.port === 'traffic-port' ? String(t.port) : tg.hc.port,
    };
    if (t.status !== 'draining' && !tg.inUse) {
      return { ...base, TargetHealth: { State: 'unused', Reason: 'Target.NotInUse', Description: 'Target group is not configured to receive traffic from the load balancer' } };
    }
    switch (t.status) {
      case 'registering':
        return { ...base, TargetHealth: { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' } };
      case 'checking':
        return { ...base, TargetHealth: { State: 'initial', Reason: 'Elb.InitialHealthChecking', Description: 'Initial health checks in progress' } };
      case 'healthy':
        return { ...base, TargetHealth: { State: 'healthy' } };
      case 'unhealthy':
        return { ...base, TargetHealth: { State: 'unhealthy', Reason: t.reason as never, Description: t.description ?? 'Health checks failed' } };
      case 'draining':
        return { ...base, TargetHealth: { State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' } };
    }
  }

  private checkTargets(tg: TgRec, targets: TargetDescription[]): Array<{ id: string; port: number; az?: string }> {
    return targets.map((d) => {
      const id = str(d.Id);
      const port = d.Port === undefined || (d.Port as unknown) === '' ? tg.port : Number(d.Port);
      if (tg.targetType === 'ip' && !IPV4.test(id)) throw new AwsApiError('InvalidTarget', `The IP address '${id}' is not a valid IPv4 address`);
      if (tg.targetType === 'instance' && !/^i-[0-9a-f]{8,17}$/.test(id)) throw new AwsApiError('InvalidTarget', `The following targets are not valid instances: '${id}'`);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new AwsApiError('ValidationError', `Target port '${String(d.Port)}' must be between 1 and 65535`);
      return { id, port, ...(d.AvailabilityZone ? { az: str(d.AvailabilityZone) } : {}) };
    });
  }

  private register(tg: TgRec, d: { id: string; port: number; az?: string }): void {
    const key = `${d.id}:${d.port}`;
    const existing = tg.targets.get(key);
    if (existing && existing.status !== 'draining') return; // registering a registered target is a no-op
    const gen = (existing?.gen ?? 0) + 1;
    if (existing) this.stopChecks(existing);
    const nodes: NodeView[] = Array.from({ length: this.nodeCount }, () => ({ phase: 'registering', okStreak: 0, failStreak: 0, probing: false }));
    const t: TargetRec = { key, id: d.id, port: d.port, ...(d.az ? { az: d.az } : {}), status: 'registering', nodes, registeredAt: Date.now(), gen };
    tg.targets.set(key, t);
    this.record(tg, t, 'state');
    // The registration reaches each load balancer node (its routing table and health checker) after its own delay.
    nodes.forEach((n, i) => {
      this.later(this.clock.delay('albPropagationSeconds'), () => {
        if (tg.targets.get(key) !== t || n.phase !== 'registering' || t.status === 'draining') return;
        this.dpSet(tg, i, key, { ip: t.id, port: t.port, health: 'initial' });
        n.phase = 'checking';
        this.aggregate(tg, t, !tg.inUse);
        if (tg.inUse) this.startChecks(tg, t, i);
      });
    });
  }

  private deregister(tg: TgRec, d: { id: string; port: number }): void {
    const key = `${d.id}:${d.port}`;
    const t = tg.targets.get(key);
    if (!t || t.status === 'draining') return; // deregistering an unknown target succeeds
    this.stopChecks(t);
    t.status = 'draining';
    t.deregisteredAt = Date.now();
    const delay = Number(tg.attributes.get('deregistration_delay.timeout_seconds') ?? '300');
    t.drainEndsAt = t.deregisteredAt + this.clock.ms(delay);
    this.record(tg, t, 'state');
    // Each node keeps routing to the target until the deregistration has reached it.
    let pending = t.nodes.length;
    t.nodes.forEach((n, i) => {
      const wasRegistering = n.phase === 'registering';
      this.later(wasRegistering ? 0 : this.clock.delay('albDeregistrationSeconds'), () => {
        const cur = tg.targets.get(key);
        // A newer registration of the same ip:port adds itself back after its own propagation delay.
        if (!cur || cur === t || cur.nodes[i]?.phase === 'registering') this.dpDelete(tg, i, key);
        if (--pending > 0) return;
        t.dpRemoved = true;
        this.maybeCompleteDrain(tg, t);
      });
    });
    this.later(delay, () => {
      if (tg.targets.get(key) !== t) return;
      tg.targets.delete(key);
      this.record(tg, t, 'removed', 'unused');
      // Requests still in flight when the delay ends are cut: the client gets a 502. An NLB cuts open connections
      // only with deregistration_delay.connection_termination.enabled (and otherwise lets them run).
      if (tg.protocol !== 'TCP' || tg.attributes.get('deregistration_delay.connection_termination.enabled') === 'true') {
        for (const f of [...(tg.inFlight.get(key) ?? [])]) f.abort();
      }
    });
  }

  private maybeCompleteDrain(tg: TgRec, t: TargetRec): void {
    if (t.status !== 'draining' || t.drainCompletedAt !== undefined || !t.dpRemoved) return;
    if ((tg.inFlight.get(t.key)?.size ?? 0) > 0) return;
    t.drainCompletedAt = Date.now();
    this.record(tg, t, 'drain-complete', 'draining');
  }

  /**
   * Node `i`'s health checks of a target: every interval, the first one at once ('immediate') or at a random point
   * of the first interval ('random': the node's checker runs on its own schedule, not the registration's).
   */
  private startChecks(tg: TgRec, t: TargetRec, i: number): void {
    const n = t.nodes[i];
    if (this.stopped || !n || n.checkTimer) return;
    const gen = t.gen;
    const run = (): void => {
      if (n.probing || tg.targets.get(t.key) !== t || t.gen !== gen) return;
      n.probing = true;
      const port = tg.hc.port === 'traffic-port' ? t.port : Number(tg.hc.port);
      const timeoutMs = this.clock.ms(tg.hc.timeoutSeconds);
      (tg.hc.protocol === 'TCP' ? probeTcp(() => this.connectTarget(t.id, port), timeoutMs) : probeTarget(this.network, t.id, port, tg.hc.path, timeoutMs, tg.matches))
        .then((r) => {
          n.probing = false;
          if (t.gen === gen && n.checkTimer) this.onProbe(tg, t, i, r);
        })
        .catch(() => {
          n.probing = false;
        });
    };
    if (this.clock.timings.albFirstHealthCheck === 'random') {
      const first = this.random.checks.uniform(0, tg.hc.intervalSeconds);
      n.checkTimer = this.clock.after(first, () => {
        if (!n.checkTimer) return;
        n.checkTimer = this.clock.every(tg.hc.intervalSeconds, run);
        run();
      });
      return;
    }
    n.checkTimer = this.clock.every(tg.hc.intervalSeconds, run);
    run();
  }

  private stopChecks(t: TargetRec): void {
    for (const n of t.nodes) this.stopCheck(n);
  }

  private stopCheck(n: NodeView): void {
    // clearTimeout clears both the first (one-shot) check and the interval.
    if (n.checkTimer) clearTimeout(n.checkTimer);
    delete n.checkTimer;
  }

  private onProbe(tg: TgRec, t: TargetRec, i: number, r: ProbeResult): void {
    const n = t.nodes[i];
    if (!n || t.status === 'draining' || n.phase === 'registering' || !tg.inUse) return;
    if (r.ok) {
      n.okStreak++;
      n.failStreak = 0;
      // After registration one passing check makes a target healthy; afterwards the healthy threshold applies.
      if (n.phase === 'checking' || (n.phase === 'unhealthy' && n.okStreak >= tg.hc.healthyThreshold)) this.setHealth(tg, t, i, 'healthy');
      return;
    }
    n.failStreak++;
    n.okStreak = 0;
    if ((n.phase === 'checking' || n.phase === 'healthy') && n.failStreak >= tg.hc.unhealthyThreshold) {
      this.setHealth(tg, t, i, 'unhealthy', r.reason, r.description);
    } else if (n.phase === 'unhealthy' && (n.reason !== r.reason || n.description !== r.description)) {
      n.reason = r.reason;
      n.description = r.description;
      this.aggregate(tg, t);
    }
  }

  private setHealth(tg: TgRec, t: TargetRec, i: number, status: 'healthy' | 'unhealthy', reason?: string, description?: string): void {
    const n = t.nodes[i]!;
    n.phase = status;
    if (reason) n.reason = reason;
    else delete n.reason;
    if (description) n.description = description;
    else delete n.description;
    this.aggregate(tg, t);
    const key = t.key;
    // The node's own verdict reaches its routing table after a short delay.
    this.later(this.clock.delay('albHealthRoutingSeconds'), () => {
      const e = tg.dp[i]?.get(key);
      if (!e || tg.targets.get(key) !== t || t.status === 'draining' || n.phase !== status) return;
      if (e.health !== status) {
        e.health = status;
        this.record(tg, t, 'data-plane', status === 'healthy' ? 'routable' : 'not-routable', i);
      }
    });
  }

  /**
   * The control plane's state of a (not draining) target from its nodes' views: `initial` (registering) until the
   * registration has reached a node; `unhealthy` when any node finds it unhealthy (that node's reason); `healthy`
   * when every node has passed it ("after your target is registered, it must pass one health check to be
   * considered healthy" — per node, as "each load balancer node checks the health of each target"); otherwise
   * `initial` (initial health checking). Records a state event when it changed (or always, with `force`).
   */
  private aggregate(tg: TgRec, t: TargetRec, quiet = false): void {
    if (t.status === 'draining') return;
    const before = `${t.status}|${t.reason ?? ''}|${t.description ?? ''}`;
    const sick = t.nodes.find((n) => n.phase === 'unhealthy');
    delete t.reason;
    delete t.description;
    if (t.nodes.every((n) => n.phase === 'registering')) t.status = 'registering';
    else if (sick) {
      t.status = 'unhealthy';
      if (sick.reason) t.reason = sick.reason;
      if (sick.description) t.description = sick.description;
    } else if (t.nodes.every((n) => n.phase === 'healthy')) t.status = 'healthy';
    else t.status = 'checking';
    if (!quiet && `${t.status}|${t.reason ?? ''}|${t.description ?? ''}` !== before) this.record(tg, t, 'state');
  }

  /** Called when a target group's use by listener rules may have changed. */
  private refreshUsage(): void {
    for (const tg of this.tgs.values()) {
      const inUse = this.tgReferenced(tg.arn);
      if (inUse === tg.inUse) continue;
      tg.inUse = inUse;
      for (const t of tg.targets.values()) {
        if (t.status === 'draining' || t.status === 'registering') continue;
        this.stopChecks(t);
        if (inUse) {
          // A target group that starts receiving traffic health-checks its targets from scratch.
          t.nodes.forEach((n, i) => {
            if (n.phase === 'registering') return;
            n.phase = 'checking';
            n.okStreak = 0;
            n.failStreak = 0;
            delete n.reason;
            delete n.description;
            const e = tg.dp[i]?.get(t.key);
            if (e) e.health = 'initial';
            this.startChecks(tg, t, i);
          });
        }
        this.aggregate(tg, t, true);
        this.record(tg, t, 'state');
      }
    }
  }

  private tgReferenced(tgArn: string): boolean {
    for (const l of this.listeners.values()) if (l.defaultActions.some((a) => actionTargetGroups(a).includes(tgArn))) return true;
    for (const r of this.rules.values()) if (r.actions.some((a) => actionTargetGroups(a).includes(tgArn))) return true;
    return false;
  }

  private tgLoadBalancers(tgArn: string): string[] {
    const out = new Set<string>();
    for (const l of this.listeners.values()) {
      if (l.defaultActions.some((a) => actionTargetGroups(a).includes(tgArn))) out.add(l.lbArn);
    }
    for (const r of this.rules.values()) {
      if (r.actions.some((a) => actionTargetGroups(a).includes(tgArn))) {
        const l = this.listeners.get(r.listenerArn);
        if (l) out.add(l.lbArn);
      }
    }
    return [...out];
  }

  private mustTg(arn: unknown): TgRec {
    const a = str(arn);
    if (!a) throw new AwsApiError('ValidationError', 'A target group ARN must be specified');
    const tg = this.tgs.get(a);
    if (!tg) throw new AwsApiError('TargetGroupNotFound', `Target groups '${a}' not found`);
    return tg;
  }

  // ------------------------------------------------------------------ data plane support

  private dpSet(tg: TgRec, node: number, key: string, e: DpTarget): void {
    tg.dp[node]?.set(key, e);
    this.pushEvent({ at: Date.now(), tgArn: tg.arn, id: e.ip, port: e.port, kind: 'data-plane', state: 'added', ...this.nodeField(node) });
  }

  private dpDelete(tg: TgRec, node: number, key: string): void {
    const e = tg.dp[node]?.get(key);
    if (!e) return;
    tg.dp[node]!.delete(key);
    this.pushEvent({ at: Date.now(), tgArn: tg.arn, id: e.ip, port: e.port, kind: 'data-plane', state: 'removed', ...this.nodeField(node) });
  }

  private nodeField(node: number): { node?: number } {
    return this.nodeCount > 1 ? { node } : {};
  }

  private dataPlaneHost(): DataPlaneHost {
    return {
      clock: this.clock,
      metrics: this.metrics,
      idleTimeoutSeconds: this.idleTimeoutSeconds,
      network: this.network,
      route: (lbArn, host, path, method, listenerArn, headers) => this.route(lbArn, host, path, method, listenerArn, headers),
      pick: (tgArn) => this.pick(tgArn),
      track: (tgArn, key, f) => {
        const tg = this.tgs.get(tgArn);
        if (!tg) return () => undefined;
        let set = tg.inFlight.get(key);
        if (!set) tg.inFlight.set(key, (set = new Set()));
        set.add(f);
        return () => {
          set!.delete(f);
          const t = tg.targets.get(key);
          if (t) this.maybeCompleteDrain(tg, t);
        };
      },
    };
  }

  /** A TCP connection to a target through the pod network (NLB data plane and TCP health checks). */
  private connectTarget(ip: string, port: number): TargetConnection {
    return connectToPod(this.network, ip, port);
  }

  private nlbHost(): NlbHost {
    const dp = this.dataPlaneHost();
    return {
      clock: this.clock,
      connect: (ip, port) => this.connectTarget(ip, port),
      forwardTarget: (listenerArn) => {
        const l = this.listeners.get(listenerArn);
        const a = l ? [...l.defaultActions].sort((x, y) => Number(x.Order ?? 0) - Number(y.Order ?? 0)).at(-1) : undefined;
        return a ? actionTargetGroups(a)[0] : undefined;
      },
      pick: (tgArn) => this.pick(tgArn),
      track: (tgArn, key, f) => dp.track(tgArn, key, f),
      count: (lbArn, outcome) => {
        const lb = this.lbs.get(lbArn);
        if (lb) lb.connections[outcome] = (lb.connections[outcome] ?? 0) + 1;
      },
    };
  }

  /** An NLB's connection outcomes so far (`forwarded`, `reset-no-target`, `reset-refused`, `reset-timeout`). */
  connectionStats(lbArn: string): Record<string, number> {
    return { ...(this.lbs.get(lbArn)?.connections ?? {}) };
  }

  private route(lbArn: string, host: string, path: string, method: string, listenerArn?: string, headers: IncomingHttpHeaders = {}): RouteDecision {
    // An HTTPS listener's server names its listener; the HTTP data plane serves the HTTP listener (port 80 first).
    const listeners = listenerArn
      ? [this.listeners.get(listenerArn)].filter((l): l is ListenerRec => l !== undefined)
      : [...this.listeners.values()].filter((l) => l.lbArn === lbArn && l.protocol === 'HTTP').sort((a, b) => (a.port === 80 ? -1 : b.port === 80 ? 1 : a.port - b.port));
    const l = listeners[0];
    if (!l) return { kind: 'no-listener' };
    let actions = l.defaultActions;
    for (const r of this.rulesOf(l.arn)) {
      if (r.conditions.every((c) => conditionMatches(c, host, path, method, headers))) {
        actions = r.actions;
        break;
      }
    }
    const a = [...actions].sort((x, y) => Number(x.Order ?? 0) - Number(y.Order ?? 0)).at(-1);
    if (!a) return { kind: 'fixed', status: 503, contentType: 'text/plain', body: '' };
    if (a.Type === 'fixed-response') {
      const fr = a.FixedResponseConfig;
      return { kind: 'fixed', status: Number(fr?.StatusCode ?? 200), contentType: fr?.ContentType ?? 'text/plain', body: fr?.MessageBody ?? '' };
    }
    if (a.Type === 'redirect') {
      const rc = a.RedirectConfig;
      // #{protocol}://#{host}:#{port}/#{path}: each part given, or the request's own.
      const protocol = rc?.Protocol && rc.Protocol !== '#{protocol}' ? rc.Protocol : l.protocol;
      const port = rc?.Port && rc.Port !== '#{port}' ? rc.Port : String(l.port);
      const location = `${protocol.toLowerCase()}://${rc?.Host && rc.Host !== '#{host}' ? rc.Host : host}:${port}${rc?.Path && rc.Path !== '/#{path}' ? rc.Path : path}`;
      return { kind: 'fixed', status: rc?.StatusCode === 'HTTP_301' ? 301 : 302, contentType: 'text/plain', body: '', location };
    }
    const tgs = actionTargetGroupsWeighted(a);
    if (tgs.length === 0) return { kind: 'fixed', status: 503, contentType: 'text/plain', body: '' };
    const total = tgs.reduce((s, t) => s + t.weight, 0);
    let tgArn = tgs[0]!.arn;
    if (tgs.length > 1 && total > 0) {
      let r = this.random.weights.float() * total;
      for (const t of tgs) {
        r -= t.weight;
        if (r < 0) {
          tgArn = t.arn;
          break;
        }
      }
    }
    return { kind: 'forward', tgArn };
  }

  private pick(tgArn: string): DpTarget | undefined {
    const tg = this.tgs.get(tgArn);
    if (!tg) return undefined;
    // Each request reaches one load balancer node (clients spread over the nodes' addresses), which routes by its own table.
    const node = this.nodeCount > 1 ? this.random.nodes.int(this.nodeCount) : 0;
    const all = [...(tg.dp[node] ?? new Map<string, DpTarget>()).entries()].sort((a, b) => a[0].localeCompare(b[0]));
    let candidates = all.filter(([, e]) => e.health === 'healthy');
    // Fail open: with no healthy target, route to all registered targets that failed health checks.
    if (candidates.length === 0) candidates = all.filter(([, e]) => e.health === 'unhealthy');
    if (candidates.length === 0) return undefined;
    if (tg.attributes.get('load_balancing.algorithm.type') === 'least_outstanding_requests') {
      const load = (k: string): number => tg.inFlight.get(k)?.size ?? 0;
      const min = Math.min(...candidates.map(([k]) => load(k)));
      candidates = candidates.filter(([k]) => load(k) === min);
    }
    const chosen = candidates[tg.rr++ % candidates.length]!;
    return chosen[1];
  }

  // ------------------------------------------------------------------ helpers

  private later(simSeconds: number, fn: () => void): void {
    if (this.stopped) return;
    const t = this.clock.after(simSeconds, () => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    });
    this.timers.add(t);
  }

  private record(tg: TgRec, t: TargetRec, kind: TargetEvent['kind'], state?: string, node?: number): void {
    const view = this.healthView(tg, t).TargetHealth!;
    this.pushEvent({
      at: Date.now(),
      tgArn: tg.arn,
      id: t.id,
      port: t.port,
      kind,
      state: state ?? String(view.State),
      ...(kind === 'state' && view.Reason ? { reason: String(view.Reason) } : {}),
      ...(kind === 'state' && view.Description ? { description: view.Description } : {}),
      ...(node !== undefined ? this.nodeField(node) : {}),
    });
  }

  private pushEvent(e: TargetEvent): void {
    this.history.push(e);
    if (this.history.length > 20000) this.history.splice(0, this.history.length - 20000);
    this.emitter.emit('target', e);
  }
}

// ------------------------------------------------------------------ module helpers

function notFoundLb(): never {
  throw new AwsApiError('LoadBalancerNotFound', 'One or more load balancers not found');
}

function notFoundTgs(): never {
  throw new AwsApiError('TargetGroupNotFound', 'One or more target groups not found');
}

/** Values from the wire are strings; in-process callers pass proper types. */
function str(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

function int(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n)) throw new AwsApiError('ValidationError', `${what} must be an integer, not '${String(v)}'`);
  return n;
}

function bool(v: unknown): boolean {
  return v === true || v === 'true';
}

function list<T>(v: T[] | undefined | string): T[] {
  return Array.isArray(v) ? v : [];
}

function tagMap(tags: Tag[] | undefined): Map<string, string> {
  return new Map(list(tags).map((t) => [str(t.Key), str(t.Value)]));
}

function paginate<T>(items: T[], marker: unknown, pageSize: unknown, max: number): { page: T[]; next?: string } {
  let start = 0;
  if (marker !== undefined && marker !== '') {
    const decoded = Number(Buffer.from(String(marker), 'base64').toString('utf8').replace(/^lab:/, ''));
    if (!Number.isInteger(decoded) || decoded < 0) throw new AwsApiError('ValidationError', `Invalid marker '${String(marker)}'`);
    start = decoded;
  }
  let size = max;
  if (pageSize !== undefined && pageSize !== '') {
    size = Number(pageSize);
    if (!Number.isInteger(size) || size < 1 || size > max) throw new AwsApiError('ValidationError', `Page size must be between 1 and ${max}`);
  }
  const page = items.slice(start, start + size);
  const end = start + page.length;
  return end < items.length ? { page, next: Buffer.from(`lab:${end}`).toString('base64') } : { page };
}

function actionTargetGroups(a: Action): string[] {
  return actionTargetGroupsWeighted(a).map((t) => t.arn);
}

function actionTargetGroupsWeighted(a: Action): Array<{ arn: string; weight: number }> {
  if (a.Type !== 'forward') return [];
  const fc = list(a.ForwardConfig?.TargetGroups);
  if (fc.length > 0) return fc.map((t) => ({ arn: str(t.TargetGroupArn), weight: t.Weight === undefined ? 1 : Number(t.Weight) }));
  return a.TargetGroupArn ? [{ arn: str(a.TargetGroupArn), weight: 1 }] : [];
}

function normalizeConditions(conditions: RuleCondition[]): RuleCondition[] {
  return structuredClone(conditions).map((c) => {
    const field = str(c.Field);
    if (field === 'path-pattern' && !c.PathPatternConfig && c.Values) return { ...c, PathPatternConfig: { Values: list(c.Values) } };
    if (field === 'host-header' && !c.HostHeaderConfig && c.Values) return { ...c, HostHeaderConfig: { Values: list(c.Values) } };
    if (!['path-pattern', 'host-header', 'http-request-method', 'http-header', 'query-string', 'source-ip'].includes(field)) {
      throw new AwsApiError('ValidationError', `Condition field '${field}' is not supported`);
    }
    return c;
  });
}

/** ALB wildcard matching: `*` any run of characters, `?` exactly one. */
export function wildcardMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('')
        .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
    caseInsensitive ? 'i' : '',
  );
  return re.test(value);
}

function conditionMatches(c: RuleCondition, host: string, path: string, method: string, headers: IncomingHttpHeaders): boolean {
  switch (c.Field) {
    case 'path-pattern':
      return list(c.PathPatternConfig?.Values ?? c.Values).some((p) => wildcardMatch(str(p), path));
    case 'host-header':
      return list(c.HostHeaderConfig?.Values ?? c.Values).some((p) => wildcardMatch(str(p), host, true));
    case 'http-request-method':
      return list(c.HttpRequestMethodConfig?.Values).some((m) => str(m) === method);
    case 'http-header': {
      // The header's name is case-insensitive; a value matches any of the condition's (wildcards, case-insensitive).
      const raw = headers[String(c.HttpHeaderConfig?.HttpHeaderName ?? '').toLowerCase()];
      const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      return values.some((v) => list(c.HttpHeaderConfig?.Values).some((p) => wildcardMatch(str(p), v, true)));
    }
    default:
      return true; // conditions the lab does not evaluate (query strings, source IPs) match
  }
}

function validateAttribute(key: string, value: string): void {
  const intRange = (lo: number, hi: number): void => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < lo || n > hi) {
      throw new AwsApiError('ValidationError', `The value of attribute '${key}' must be an integer between ${lo} and ${hi}, not '${value}'`);
    }
  };
  const oneOf = (...vals: string[]): void => {
    if (!vals.includes(value)) throw new AwsApiError('ValidationError', `The value of attribute '${key}' must be one of ${vals.join(', ')}, not '${value}'`);
  };
  switch (key) {
    case 'deregistration_delay.timeout_seconds':
      return intRange(0, 3600);
    case 'slow_start.duration_seconds':
      if (value === '0') return;
      return intRange(30, 900);
    case 'stickiness.enabled':
    case 'lambda.multi_value_headers.enabled':
    case 'deregistration_delay.connection_termination.enabled':
    case 'preserve_client_ip.enabled':
    case 'proxy_protocol_v2.enabled':
    case 'target_health_state.unhealthy.connection_termination.enabled':
      return oneOf('true', 'false');
    case 'target_health_state.unhealthy.draining_interval_seconds':
      return intRange(0, 360000);
    case 'stickiness.type':
      return oneOf('lb_cookie', 'app_cookie', 'source_ip');
    case 'stickiness.lb_cookie.duration_seconds':
    case 'stickiness.app_cookie.duration_seconds':
      return intRange(1, 604800);
    case 'stickiness.app_cookie.cookie_name':
      return;
    case 'load_balancing.algorithm.type':
      return oneOf('round_robin', 'least_outstanding_requests', 'weighted_random');
    case 'load_balancing.algorithm.anomaly_mitigation':
      return oneOf('on', 'off');
    case 'load_balancing.cross_zone.enabled':
      return oneOf('true', 'false', 'use_load_balancer_configuration');
    case 'target_group_health.dns_failover.minimum_healthy_targets.count':
    case 'target_group_health.unhealthy_state_routing.minimum_healthy_targets.count':
      if (value === 'off') return;
      return intRange(1, 1000);
    case 'target_group_health.dns_failover.minimum_healthy_targets.percentage':
    case 'target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage':
      if (value === 'off') return;
      return intRange(1, 100);
    default:
      throw new AwsApiError('ValidationError', `The attribute key '${key}' is not recognized`);
  }
}
