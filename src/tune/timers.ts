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

/** ALB data-plane propagation after DeregisterTargets: a shorter preStop sleep still sends requests to a dying pod. */
export const DEFAULT_MIN_PRESTOP_SECONDS = 15;
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
