/**
 * The timer invariant for a Deployment behind a target group, and the values the tuner proposes:
 *
 *   deregistration delay  <  preStop sleep   and   preStop sleep + app shutdown  ≤  terminationGracePeriodSeconds
 *
 * - delay < preStop: the ALB has finished with the target (no request of it still in flight) before the pod
 *   stops listening, and the target reaches `unused` while the pod still exists, so the rollout's drain wait ends.
 * - preStop + shutdown ≤ grace: the kubelet does not SIGKILL the app while it is still finishing requests.
 *   (The kubelet adds 2 s on top of an exhausted grace period, so "equal" still leaves the app its full budget.)
 */

/**
 * The tail the defaults answer, measured on the lab's realistic profile (docs/lab-timings.md; the lab's timing test
 * keeps these figures true to its distributions): a terminating pod's deregistration path — EndpointSlice update, LBC
 * work queue, DeregisterTargets, then the slowest ALB node's propagation — has a p99 of 25 s; its first part (until
 * DeregisterTargets returns, when the delay starts) a p99 of 7 s; the slowest node's propagation a p99 of 23 s.
 */
export const DEREGISTRATION_PATH_P99_SECONDS = 25;
export const DEREGISTER_CALL_P99_SECONDS = 7;
export const PROPAGATION_P99_SECONDS = 23;
/** Requests the defaults leave room for: one routed by the last node at the last moment still finishes. */
export const REQUEST_ALLOWANCE_SECONDS = 5;

/**
 * The shortest preStop sleep the tuner leaves (it adds this where there is none and lengthens shorter ones). Two
 * bounds, each at the p99 of the measured tail with a request of REQUEST_ALLOWANCE_SECONDS and a margin:
 *  - SIGTERM after every node has stopped routing and the last request has finished: path p99 25 + 5 + 5 margin = 35;
 *  - the deregistration delay below it (`delayBelow`: 30 s at 40 s) ends after the slowest node's propagation and the
 *    last request (23 + 5 = 28), and still before SIGTERM (it starts at most 7 s after deletion at the p99: 30 + 7 < 40).
 * 40 s meets both (30 s did not: its 22 s delay ended before the p99 propagation plus a request, cutting it).
 */
export const DEFAULT_MIN_PRESTOP_SECONDS = 40;
/** Head-room the tuner adds when it raises a grace period. */
export const GRACE_MARGIN_SECONDS = 5;

export function delayHolds(delaySeconds: number, preStopSeconds: number): boolean {
  return delaySeconds < preStopSeconds;
}

export function graceHolds(graceSeconds: number, preStopSeconds: number, shutdownSeconds: number): boolean {
  return preStopSeconds + shutdownSeconds <= graceSeconds;
}

/** A deregistration delay comfortably below a preStop sleep of `preStopSeconds`: S − max(5, ⌈S/4⌉), never below 0. */
export function delayBelow(preStopSeconds: number): number {
  return Math.max(0, preStopSeconds - Math.max(5, Math.ceil(preStopSeconds / 4)));
}

/** The grace period the tuner writes when the current one is too short. */
export function graceFor(preStopSeconds: number, shutdownSeconds: number): number {
  return preStopSeconds + shutdownSeconds + GRACE_MARGIN_SECONDS;
}
