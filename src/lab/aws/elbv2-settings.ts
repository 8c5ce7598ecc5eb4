/**
 * The load balancer and listener settings the AWS Load Balancer Controller reconciles on every pass but the ALB
 * model does not act on: load balancer attributes, listener attributes, the subnets and security groups a load
 * balancer was created with (or later set), and its IP address type. Kept per ALB model, checked against it
 * (an unknown ARN is the same NotFound error the model gives), and merged into DescribeLoadBalancers answers so
 * that what the controller set is what it reads back — otherwise it would see drift and re-set them forever.
 */
import type {
  CreateLoadBalancerInput,
  CreateLoadBalancerOutput,
  DescribeListenerAttributesInput,
  DescribeListenerAttributesOutput,
  DescribeListenerCertificatesInput,
  DescribeListenerCertificatesOutput,
  DescribeLoadBalancerAttributesInput,
  DescribeLoadBalancerAttributesOutput,
  DescribeLoadBalancersInput,
  DescribeLoadBalancersOutput,
  LoadBalancer,
  ModifyListenerAttributesInput,
  ModifyListenerAttributesOutput,
  ModifyLoadBalancerAttributesInput,
  ModifyLoadBalancerAttributesOutput,
  SetIpAddressTypeInput,
  SetIpAddressTypeOutput,
  SetSecurityGroupsInput,
  SetSecurityGroupsOutput,
  SetSubnetsInput,
  SetSubnetsOutput,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { AlbCloud } from '../alb/cloud.js';
import { AwsApiError } from '../alb/errors.js';

/** What DescribeLoadBalancerAttributes answers for a new application load balancer. */
export const DEFAULT_ALB_ATTRIBUTES: Readonly<Record<string, string>> = {
  'access_logs.s3.enabled': 'false',
  'access_logs.s3.bucket': '',
  'access_logs.s3.prefix': '',
  'connection_logs.s3.enabled': 'false',
  'connection_logs.s3.bucket': '',
  'connection_logs.s3.prefix': '',
  'health_check_logs.s3.enabled': 'false',
  'health_check_logs.s3.bucket': '',
  'health_check_logs.s3.prefix': '',
  'deletion_protection.enabled': 'false',
  'idle_timeout.timeout_seconds': '60',
  'client_keep_alive.seconds': '3600',
  'routing.http.desync_mitigation_mode': 'defensive',
  'routing.http.drop_invalid_header_fields.enabled': 'false',
  'routing.http.preserve_host_header.enabled': 'false',
  'routing.http.x_amzn_tls_version_and_cipher_suite.enabled': 'false',
  'routing.http.xff_client_port.enabled': 'false',
  'routing.http.xff_header_processing.mode': 'append',
  'routing.http2.enabled': 'true',
  'waf.fail_open.enabled': 'false',
  'zonal_shift.config.enabled': 'false',
};

/** What DescribeLoadBalancerAttributes answers for a new network load balancer. */
export const DEFAULT_NLB_ATTRIBUTES: Readonly<Record<string, string>> = {
  'access_logs.s3.enabled': 'false',
  'access_logs.s3.bucket': '',
  'access_logs.s3.prefix': '',
  'deletion_protection.enabled': 'false',
  'load_balancing.cross_zone.enabled': 'false',
  'ipv6.deny_all_igw_traffic': 'false',
  'dns_record.client_routing_policy': 'any_availability_zone',
  'zonal_shift.config.enabled': 'false',
};

const DEFAULT_HTTP_LISTENER_ATTRIBUTES: Readonly<Record<string, string>> = {
  'routing.http.response.server.enabled': 'true',
};

const DEFAULT_TCP_LISTENER_ATTRIBUTES: Readonly<Record<string, string>> = {
  'tcp.idle_timeout.seconds': '350',
};

interface LbSettings {
  attributes: Map<string, string>;
  subnets?: string[];
  securityGroups?: string[];
  ipAddressType?: string;
}

export class Elbv2Settings {
  private readonly lbs = new Map<string, LbSettings>();
  private readonly listeners = new Map<string, Map<string, string>>();

  constructor(private readonly alb: AlbCloud) {}

  /** CreateLoadBalancer through the model, keeping the subnets and security groups asked for. */
  async createLoadBalancer(input: CreateLoadBalancerInput): Promise<CreateLoadBalancerOutput> {
    const out = await this.alb.createLoadBalancer(input);
    const lb = out.LoadBalancers?.[0];
    if (lb?.LoadBalancerArn && !this.lbs.has(lb.LoadBalancerArn)) {
      const subnets = [...(list(input.Subnets) as string[]), ...list(input.SubnetMappings).map((m) => String((m as { SubnetId?: string }).SubnetId ?? ''))].filter((s) => s !== '');
      const groups = list(input.SecurityGroups) as string[];
      this.lbs.set(lb.LoadBalancerArn, {
        attributes: new Map(Object.entries(lb.Type === 'network' ? DEFAULT_NLB_ATTRIBUTES : DEFAULT_ALB_ATTRIBUTES)),
        ...(subnets.length ? { subnets } : {}),
        ...(groups.length ? { securityGroups: groups } : {}),
      });
    }
    return { ...out, LoadBalancers: (out.LoadBalancers ?? []).map((x) => this.view(x)) };
  }

  async describeLoadBalancers(input: DescribeLoadBalancersInput): Promise<DescribeLoadBalancersOutput> {
    const out = await this.alb.describeLoadBalancers(input);
    this.forgetMissing(out, input);
    return { ...out, LoadBalancers: (out.LoadBalancers ?? []).map((x) => this.view(x)) };
  }

  async describeLoadBalancerAttributes(input: DescribeLoadBalancerAttributesInput): Promise<DescribeLoadBalancerAttributesOutput> {
    const s = await this.lb(input.LoadBalancerArn);
    return { Attributes: [...s.attributes].map(([Key, Value]) => ({ Key, Value })) };
  }

  async modifyLoadBalancerAttributes(input: ModifyLoadBalancerAttributesInput): Promise<ModifyLoadBalancerAttributesOutput> {
    const s = await this.lb(input.LoadBalancerArn);
    const attrs = list(input.Attributes) as Array<{ Key?: string; Value?: string }>;
    for (const a of attrs) {
      const key = a.Key ?? '';
      if (!s.attributes.has(key)) throw new AwsApiError('InvalidConfigurationRequest', `Load balancer attribute key '${key}' is not recognized`);
      if (key === 'idle_timeout.timeout_seconds' && !(Number(a.Value) >= 1 && Number(a.Value) <= 4000)) {
        throw new AwsApiError('InvalidConfigurationRequest', `Load balancer attribute '${key}' must be an integer from 1 to 4000, not '${a.Value ?? ''}'`);
      }
      if (key.endsWith('.enabled') && a.Value !== 'true' && a.Value !== 'false') {
        throw new AwsApiError('InvalidConfigurationRequest', `Load balancer attribute '${key}' must be 'true' or 'false', not '${a.Value ?? ''}'`);
      }
    }
    for (const a of attrs) s.attributes.set(a.Key ?? '', a.Value ?? '');
    return { Attributes: [...s.attributes].map(([Key, Value]) => ({ Key, Value })) };
  }

  async describeListenerAttributes(input: DescribeListenerAttributesInput): Promise<DescribeListenerAttributesOutput> {
    const attrs = await this.listener(input.ListenerArn);
    return { Attributes: [...attrs].map(([Key, Value]) => ({ Key, Value })) };
  }

  async modifyListenerAttributes(input: ModifyListenerAttributesInput): Promise<ModifyListenerAttributesOutput> {
    const attrs = await this.listener(input.ListenerArn);
    const changes = list(input.Attributes) as Array<{ Key?: string; Value?: string }>;
    for (const a of changes) {
      const key = a.Key ?? '';
      if (!attrs.has(key) && !key.startsWith('routing.http.response.')) throw new AwsApiError('ValidationError', `Listener attribute key '${key}' is not recognized`);
    }
    for (const a of changes) attrs.set(a.Key ?? '', a.Value ?? '');
    return { Attributes: [...attrs].map(([Key, Value]) => ({ Key, Value })) };
  }

  async describeListenerCertificates(input: DescribeListenerCertificatesInput): Promise<DescribeListenerCertificatesOutput> {
    await this.listener(input.ListenerArn);
    // The lab serves plain HTTP listeners only: there is never a certificate.
    return { Certificates: [] };
  }

  async setSecurityGroups(input: SetSecurityGroupsInput): Promise<SetSecurityGroupsOutput> {
    const s = await this.lb(input.LoadBalancerArn);
    const groups = list(input.SecurityGroups) as string[];
    s.securityGroups = groups;
    return { SecurityGroupIds: groups };
  }

  async setSubnets(input: SetSubnetsInput): Promise<SetSubnetsOutput> {
    const s = await this.lb(input.LoadBalancerArn);
    const subnets = [...(list(input.Subnets) as string[]), ...list(input.SubnetMappings).map((m) => String((m as { SubnetId?: string }).SubnetId ?? ''))].filter((x) => x !== '');
    s.subnets = subnets;
    const [lb] = (await this.describeLoadBalancers({ LoadBalancerArns: [input.LoadBalancerArn ?? ''] })).LoadBalancers ?? [];
    return { AvailabilityZones: lb?.AvailabilityZones ?? [] };
  }

  async setIpAddressType(input: SetIpAddressTypeInput): Promise<SetIpAddressTypeOutput> {
    const s = await this.lb(input.LoadBalancerArn);
    if (input.IpAddressType !== 'ipv4' && input.IpAddressType !== 'dualstack' && input.IpAddressType !== 'dualstack-without-public-ipv4') {
      throw new AwsApiError('ValidationError', `IP address type '${String(input.IpAddressType)}' is not valid: use ipv4, dualstack or dualstack-without-public-ipv4`);
    }
    s.ipAddressType = input.IpAddressType;
    return { IpAddressType: input.IpAddressType };
  }

  private view(lb: LoadBalancer): LoadBalancer {
    const s = lb.LoadBalancerArn ? this.lbs.get(lb.LoadBalancerArn) : undefined;
    if (!s) return lb;
    const zones = s.subnets
      ? s.subnets.map((id) => lb.AvailabilityZones?.find((z) => z.SubnetId === id) ?? { SubnetId: id, ZoneName: zoneOfSubnet(this.alb.region, id) })
      : lb.AvailabilityZones;
    return {
      ...lb,
      ...(zones ? { AvailabilityZones: zones } : {}),
      ...(s.securityGroups ? { SecurityGroups: s.securityGroups } : {}),
      ...(s.ipAddressType ? { IpAddressType: s.ipAddressType as LoadBalancer['IpAddressType'] } : {}),
    };
  }

  /** A load balancer the model no longer has loses its settings (deleted through the model directly). */
  private forgetMissing(out: DescribeLoadBalancersOutput, input: DescribeLoadBalancersInput): void {
    if (list(input.LoadBalancerArns).length || list(input.Names).length || input.Marker) return;
    const live = new Set((out.LoadBalancers ?? []).map((l) => l.LoadBalancerArn));
    if (out.NextMarker) return;
    for (const arn of [...this.lbs.keys()]) if (!live.has(arn)) this.lbs.delete(arn);
  }

  private async lb(arn: string | undefined): Promise<LbSettings> {
    const [lb] = (await this.alb.describeLoadBalancers({ LoadBalancerArns: [arn ?? ''] })).LoadBalancers ?? [];
    const key = lb?.LoadBalancerArn ?? arn ?? '';
    let s = this.lbs.get(key);
    if (!s) {
      // created before the settings existed (the LBC emulation calls the model directly)
      s = { attributes: new Map(Object.entries(lb?.Type === 'network' ? DEFAULT_NLB_ATTRIBUTES : DEFAULT_ALB_ATTRIBUTES)) };
      this.lbs.set(key, s);
    }
    return s;
  }

  private async listener(arn: string | undefined): Promise<Map<string, string>> {
    const [l] = (await this.alb.describeListeners({ ListenerArns: [arn ?? ''] })).Listeners ?? [];
    const key = l?.ListenerArn ?? arn ?? '';
    let attrs = this.listeners.get(key);
    if (!attrs) {
      attrs = new Map(Object.entries(l?.Protocol === 'TCP' || l?.Protocol === 'UDP' || l?.Protocol === 'TCP_UDP' || l?.Protocol === 'TLS' ? DEFAULT_TCP_LISTENER_ATTRIBUTES : DEFAULT_HTTP_LISTENER_ATTRIBUTES));
      this.listeners.set(key, attrs);
    }
    return attrs;
  }
}

function zoneOfSubnet(region: string, subnetId: string): string {
  const i = /(\d)$/.exec(subnetId)?.[1];
  return `${region}${String.fromCharCode(97 + Number(i ?? 0))}`;
}

/** The wire form leaves an empty list as '' and a list as an array; the SDK types say array. */
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const settings = new WeakMap<AlbCloud, Elbv2Settings>();

export function elbv2Settings(alb: AlbCloud): Elbv2Settings {
  let s = settings.get(alb);
  if (!s) {
    s = new Elbv2Settings(alb);
    settings.set(alb, s);
  }
  return s;
}
