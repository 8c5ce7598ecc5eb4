import { createHash } from 'node:crypto';
import type { LabRandom } from '../random.js';

/**
 * Names, ARNs and CloudWatch dimension values as AWS and the AWS Load Balancer Controller form them.
 * The account id is fixed: the lab is one account.
 */

export const LAB_ACCOUNT_ID = '123456789012';

/** `k8s-<first 8 alnum of a>-<first 8 alnum of b>-<first 10 hex of sha256(parts)>` (LBC's implicit-group ALB and TG names). */
export function lbcResourceName(a: string, b: string, hashParts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of hashParts) h.update(p);
  return `k8s-${alnum(a).slice(0, 8)}-${alnum(b).slice(0, 8)}-${h.digest('hex').slice(0, 10)}`;
}

/** `k8s-<first 17 alnum of the group name>-<first 10 hex of sha256(parts)>` (LBC's explicit-IngressGroup ALB name). */
export function lbcGroupLoadBalancerName(groupName: string, hashParts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of hashParts) h.update(p);
  return `k8s-${alnum(groupName).slice(0, 17)}-${h.digest('hex').slice(0, 10)}`;
}

function alnum(s: string): string {
  return s.replace(/[^A-Za-z0-9]/g, '');
}

/** 16 hex digits (an ARN's id), from the lab's seeded stream. */
export function randomHex16(random: LabRandom): string {
  return random.hex(8);
}

export function loadBalancerArn(region: string, name: string, id: string, type: 'application' | 'network' = 'application'): string {
  return `arn:aws:elasticloadbalancing:${region}:${LAB_ACCOUNT_ID}:loadbalancer/${type === 'network' ? 'net' : 'app'}/${name}/${id}`;
}

export function targetGroupArn(region: string, name: string, id: string): string {
  return `arn:aws:elasticloadbalancing:${region}:${LAB_ACCOUNT_ID}:targetgroup/${name}/${id}`;
}

export function listenerArn(lbArn: string, id: string): string {
  return lbArn.replace(':loadbalancer/', ':listener/') + `/${id}`;
}

export function ruleArn(listener: string, id: string): string {
  return listener.replace(':listener/', ':listener-rule/') + `/${id}`;
}

/** `<name>-<10 digits>.<region>.elb.amazonaws.com`, lower case (as LBC writes it into the Ingress status). */
export function loadBalancerDnsName(region: string, name: string, random: LabRandom): string {
  const digits = String(random.int(10_000_000_000)).padStart(10, '0');
  return `${name}-${digits}.${region}.elb.amazonaws.com`.toLowerCase();
}

/** `<name>-<16 hex>.elb.<region>.amazonaws.com`, lower case (an NLB's DNS name, as LBC writes it into the Service status). */
export function networkLoadBalancerDnsName(region: string, name: string, random: LabRandom): string {
  return `${name}-${random.hex(8)}.elb.${region}.amazonaws.com`.toLowerCase();
}

/** CloudWatch `LoadBalancer` dimension: `app/<name>/<id>`. */
export function loadBalancerDimension(lbArn: string): string {
  return lbArn.split(':loadbalancer/')[1] ?? lbArn;
}

/** CloudWatch `TargetGroup` dimension: `targetgroup/<name>/<id>`. */
export function targetGroupDimension(tgArn: string): string {
  return tgArn.slice(tgArn.lastIndexOf(':') + 1);
}

/** The hosted zone id of ALBs in a region (used only for DescribeLoadBalancers output). */
export function canonicalHostedZoneId(region: string): string {
  const zones: Record<string, string> = {
    'us-east-1': 'Z35SXDOTRQ7X7K',
    'us-east-2': 'Z3AADJGX6KTTL2',
    'us-west-1': 'Z368ELLRRE2KJ0',
    'us-west-2': 'Z1H1FL5HABSF5',
    'eu-west-1': 'Z32O12XQLNTSW2',
    'eu-central-1': 'Z215JYRZR1TBD5',
  };
  return zones[region] ?? 'Z0LAB0000000000';
}
