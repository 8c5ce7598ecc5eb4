import type { AlbPeriod } from '../../src/aws/cloudwatch.js';

/** What the CloudWatch signal tests share: one ALB, one target group, settled one-minute periods. */

export const MIN = 60_000;
export const LB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-demo-web-0a1b2c3d4e/50dc6c495c0c9188';
export const TG = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-demo-web-0a1b2c3d/73e2d6bc24d8a067';

/** A settled minute of TG from `start`; without data, a minute with no datapoint. */
export function period(start: number, data?: { requests: number; target5xx: number }): AlbPeriod {
  return {
    start,
    end: start + MIN,
    requests: data?.requests ?? 0,
    target5xx: data?.target5xx ?? 0,
    elb5xx: 0,
    byTargetGroup: [{ targetGroupArn: TG, requests: data?.requests ?? 0, target5xx: data?.target5xx ?? 0 }],
    settled: true,
    empty: data === undefined,
  };
}
