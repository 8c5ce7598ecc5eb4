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
 * The shortest preStop sleep the tuner leaves (it adds this where there is none and lengthens shorter ones): the
 * deregistration path of a terminating pod — EndpointSlice update, LBC work queue, DeregisterTargets, and the slowest
 * ALB node's propagation — has a p99 of about 25 s and a p99.9 of about 32 s under the lab's realistic profile
 * (docs/lab-timings.md, from public reports); 30 s covers the p99 with a 5 s margin (0.35 % of terminations take
 * longer). A shorter sleep still sends requests to a dying pod.
 */
export const DEFAULT_MIN_PRESTOP_SECONDS = 30;
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
