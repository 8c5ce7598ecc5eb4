import { parseDuration } from '../options.js';
import { ALB_PREFIX, parseStringMap, type IngressModel } from '../manifests/model.js';
import { deploymentName, routedDeployments } from './routes.js';
import type { RawFinding, RuleContext } from './types.js';

/**
 * The app's HTTP keep-alive timeout against the ALB's idle timeout. The ALB keeps connections to its targets open
 * and reuses them for up to its idle timeout (60 s unless `idle_timeout.timeout_seconds` says otherwise); an app
 * that closes an idle connection sooner races the ALB reusing it, and that request is a 502.
 *
 * What alb-rollout cannot know: the app's keep-alive timeout lives in its code or server config (Node.js
 * `server.keepAliveTimeout`, 5 s by default; gunicorn `--keep-alive`, 2 s; nginx `keepalive_timeout`, 75 s), not in
 * the manifests. So the rule judges only a timeout the user declares on the Deployment with KEEP_ALIVE_ANNOTATION.
 */
export const KEEP_ALIVE_ANNOTATION = 'alb-rollout.dev/keep-alive-timeout';
const IDLE_KEY = 'idle_timeout.timeout_seconds';
const AWS_DEFAULT_IDLE_SECONDS = 60;

export function transportRules({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const rd of routedDeployments(model)) {
    const d = rd.deployment;
    const annotations = (d.loaded.object.metadata.annotations ?? {}) as Record<string, unknown>;
    const raw = annotations[KEEP_ALIVE_ANNOTATION];
    if (raw === undefined) continue;
    const path = ['metadata', 'annotations', KEEP_ALIVE_ANNOTATION];
    const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (ms === undefined) {
      out.push({
        rule: 'keep-alive-timeout',
        severity: 'error',
        message: `${deploymentName(d)} has ${KEEP_ALIVE_ANNOTATION}: ${JSON.stringify(raw)}, not a duration`,
        fix: `write the app's HTTP keep-alive idle timeout as a duration, e.g. ${KEEP_ALIVE_ANNOTATION}: "75s"`,
        at: d.loaded,
        path,
      });
      continue;
    }
    const ingresses = [...new Set(rd.routes.map((r) => r.targetGroup?.ingress).filter((i): i is IngressModel => i !== undefined))];
    let idle: { ing: IngressModel; seconds: number } | undefined;
    for (const ing of ingresses) {
      const seconds = idleTimeoutOf(ing);
      if (!idle || seconds > idle.seconds) idle = { ing, seconds };
    }
    if (!idle || ms / 1000 > idle.seconds) continue;
    out.push({
      rule: 'keep-alive-timeout',
      severity: 'error',
      message:
        `${deploymentName(d)} declares a keep-alive timeout of ${ms / 1000} s (${KEEP_ALIVE_ANNOTATION}), not above the idle timeout of the ALB of Ingress ${idle.ing.namespace}/${idle.ing.name} (${idle.seconds} s): ` +
        'the app closes idle connections the ALB still reuses, and a request sent on one as it closes is a 502 — at any time, not only during rollouts',
      fix: `raise the app's keep-alive timeout above ${idle.seconds} s (e.g. ${idle.seconds + 15} s; Node.js: server.keepAliveTimeout = ${(idle.seconds + 15) * 1000}, and headersTimeout above it) and update ${KEEP_ALIVE_ANNOTATION}, or lower ${IDLE_KEY} in ${ALB_PREFIX}load-balancer-attributes below it`,
      at: d.loaded,
      path,
    });
  }
  return out;
}

/** The ALB idle timeout an Ingress asks for (`load-balancer-attributes`), else AWS's 60 s. */
function idleTimeoutOf(ing: IngressModel): number {
  const raw = ing.annotations[`${ALB_PREFIX}load-balancer-attributes`];
  if (!raw) return AWS_DEFAULT_IDLE_SECONDS;
  try {
    const n = Number(parseStringMap(raw)[IDLE_KEY]);
    return Number.isFinite(n) && n > 0 ? n : AWS_DEFAULT_IDLE_SECONDS;
  } catch {
    return AWS_DEFAULT_IDLE_SECONDS;
  }
}
