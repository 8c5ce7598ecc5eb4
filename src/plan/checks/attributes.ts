import type { CheckResult } from './result.js';

/** AWS holds the deregistration delay the manifests set on a target group. */
export function checkDeregistrationDelay(binding: { name: string }, expected: number, attributes: Record<string, string>): CheckResult {
  const actual = attributes['deregistration_delay.timeout_seconds'];
  if (actual === String(expected)) return { done: true, message: `target group ${binding.name}: deregistration_delay.timeout_seconds=${actual} on AWS` };
  return {
    done: false,
    failed: true,
    message: `target group ${binding.name} has deregistration_delay.timeout_seconds=${actual ?? '(unset)'} on AWS, expected ${expected} from the manifests. The controller may not have reconciled the annotation yet, or another annotation wins (the Service's target-group-attributes replaces the Ingress's as a whole). Fix: check \`kubectl describe ingress\` events, then re-run.`,
  };
}
