/** What a check of a snapshot says: done, still pending (and why), or failed for good. */
export interface CheckResult {
  done: boolean;
  /** Stop waiting: this cannot succeed (a failed condition, a missing gate…). */
  failed?: boolean;
  /** What is pending, one line, for progress lines (and the final error when there is no `detail`). */
  message: string;
  /** The full picture for the final error (may span lines): every pending pod and target with its reason. */
  detail?: string;
  /** What to do, specific to what is pending now (appended to a timeout). */
  hint?: string;
}

/** A target as DescribeTargetHealth reports it (aws/elbv2.ts's TargetHealth has this shape). */
export interface TargetView {
  id: string;
  port: number;
  state: string;
  reason?: string;
  description?: string;
}

import type { PlanRoute } from '../phases.js';

/** A TargetGroupBinding found for a route: the target group the checks read. */
export interface BindingInfo {
  route: PlanRoute;
  name: string;
  arn: string;
  targetType: string;
}
