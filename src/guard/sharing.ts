import type { Elb5xxMode } from './options.js';

/**
 * Whether the guard may count the load balancer's own `HTTPCode_ELB_5XX_Count`. That metric exists per load
 * balancer only: on an ALB shared with other applications (an IngressGroup, several Ingresses, TargetGroupBindings
 * of other Services) their 502/503/504 would count against this release. Then only this release's target groups
 * are judged (`HTTPCode_Target_5XX_Count`, `RequestCount`), and the report says so.
 */

export interface SharingFacts {
  /** `alb.ingress.kubernetes.io/group.name` of this release's Ingresses (IngressGroups share one ALB). */
  groupNames: string[];
  /** Other Ingresses (namespace/name) whose status names the same load balancer. */
  otherIngresses: string[];
  /** TargetGroupBindings (namespace/name) of other Services whose target group is on this load balancer. */
  otherBindings: string[];
  /** Why the cluster could not be read (RBAC…), when it could not. */
  unknown?: string;
}

export interface Elb5xxDecision {
  include: boolean;
  /** One line for the log and the report: which metrics are judged and why. */
  why: string;
}

export const GROUP_NAME_ANNOTATION = 'alb.ingress.kubernetes.io/group.name';

export function decideElb5xx(mode: Elb5xxMode, facts: SharingFacts): Elb5xxDecision {
  const tg = 'HTTPCode_Target_5XX_Count and RequestCount of this release\'s target groups';
  if (mode === 'on') return { include: true, why: `${tg} + the load balancer's HTTPCode_ELB_5XX_Count (--cloudwatch-elb-5xx on)` };
  if (mode === 'off') return { include: false, why: `${tg} only (--cloudwatch-elb-5xx off)` };
  const shared = [
    ...facts.groupNames.map((g) => `IngressGroup ${g}`),
    ...facts.otherIngresses.map((i) => `Ingress ${i}`),
    ...facts.otherBindings.map((b) => `TargetGroupBinding ${b}`),
  ];
  if (shared.length > 0) {
    return { include: false, why: `${tg} only: the load balancer is shared (${shared.slice(0, 5).join(', ')}${shared.length > 5 ? ', …' : ''}), so its HTTPCode_ELB_5XX_Count includes other applications` };
  }
  if (facts.unknown) {
    return { include: true, why: `${tg} + the load balancer's HTTPCode_ELB_5XX_Count (could not tell whether it is shared: ${facts.unknown}; use --cloudwatch-elb-5xx off if it is)` };
  }
  return { include: true, why: `${tg} + the load balancer's HTTPCode_ELB_5XX_Count (it serves only this release)` };
}
