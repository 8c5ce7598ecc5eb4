import {
  AWS_DEFAULT_DEREGISTRATION_DELAY,
  DEREGISTRATION_DELAY_KEY,
  TG_ATTRIBUTES_ANNOTATION,
  servingContainers,
  type ContainerModel,
  type DeploymentModel,
  type TargetGroupModel,
} from '../manifests/model.js';
import { DEFAULT_MIN_PRESTOP_SECONDS, delayBelow, delayHolds, graceFor, graceHolds } from '../tune/timers.js';
import { deploymentName, routedDeployments } from './routes.js';
import type { RawFinding, RuleContext } from './types.js';

/**
 * Rules about old pods stopping before the ALB stops sending to them (DESIGN.md, "Why rollouts behind an ALB drop
 * requests", 2 and 3): the preStop sleep, the grace period around it, and the deregistration delay below it.
 */

const OLD_POD_RACE =
  'when a pod is deleted, Kubernetes sends SIGTERM at the same moment it removes the endpoint; the controller deregisters the target a little later and the ALB data plane keeps routing to it for several more seconds, so requests reach a process that is shutting down or gone — 502 (connection reset) and 504 (connect timeout)';

const NOT_RESET =
  'Removing the setting later does not reset it: the controller never reverts attributes and AWS keeps the last value, so always write the value you want';

export function terminationRules(ctx: RuleContext): RawFinding[] {
  return [...preStopMissing(ctx), ...gracePeriod(ctx), ...deregistrationDelay(ctx)];
}

function preStopMissing({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const rd of routedDeployments(model)) {
    for (const c of rd.serving) {
      if (c.preStop.kind !== 'none') continue;
      const sleep = suggestedPreStop(rd.routes.map((r) => r.targetGroup).filter((t): t is TargetGroupModel => t !== undefined));
      out.push({
        rule: 'prestop-missing',
        severity: 'error',
        message: `${deploymentName(rd.deployment)} container ${c.name} has no preStop hook: ${OLD_POD_RACE}`,
        fix:
          `add to container ${c.name}: lifecycle: {preStop: {sleep: {seconds: ${sleep}}}} (Kubernetes ≥ 1.30; older clusters: exec: {command: ["/bin/sh", "-c", "sleep ${sleep}"]}). ` +
          `Keep the target group's ${DEREGISTRATION_DELAY_KEY} below the sleep and terminationGracePeriodSeconds ≥ sleep + shutdown time; \`alb-rollout plan --tune auto\` writes all three`,
        at: rd.deployment.loaded,
        path: c.path,
      });
    }
  }
  return out;
}

/** A preStop sleep that clears ALB propagation and sits above the explicit delays of the target groups. */
function suggestedPreStop(tgs: TargetGroupModel[]): number {
  const explicit = tgs.map((t) => t.deregistrationDelaySeconds).filter((d): d is number => d !== undefined);
  return Math.max(DEFAULT_MIN_PRESTOP_SECONDS, ...explicit.map((d) => d + 10));
}

function gracePeriod({ model, options }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const d of model.deployments) {
    const sleeping = d.containers.filter((c) => c.preStop.kind === 'sleep');
    if (sleeping.length === 0) continue;
    const longest = sleeping.reduce((a, b) => (sleepOf(b) > sleepOf(a) ? b : a));
    const sleep = sleepOf(longest);
    const grace = d.terminationGracePeriodSeconds;
    if (graceHolds(grace, sleep, options.shutdownSeconds)) continue;
    const graceText = d.gracePeriodExplicit ? `${grace} s` : `${grace} s (the default)`;
    out.push({
      rule: 'grace-period-too-short',
      severity: 'error',
      message:
        `${deploymentName(d)} has terminationGracePeriodSeconds ${graceText}, but container ${longest.name} sleeps ${sleep} s in preStop and the app needs ${options.shutdownSeconds} s after SIGTERM: ` +
        `the kubelet SIGKILLs the container ${grace} s after deletion, ${sleep + options.shutdownSeconds - grace} s before it has finished — requests still in flight are cut (502)`,
      fix: `set spec.template.spec.terminationGracePeriodSeconds: ${graceFor(sleep, options.shutdownSeconds)} (preStop ${sleep} + shutdown ${options.shutdownSeconds} + margin), or shorten the preStop sleep while keeping it above the deregistration delay`,
      at: d.loaded,
      path: d.gracePeriodExplicit ? [...d.podSpecPath, 'terminationGracePeriodSeconds'] : [...longest.path, 'lifecycle', 'preStop'],
    });
  }
  return out;
}

function sleepOf(c: ContainerModel): number {
  return c.preStop.kind === 'sleep' ? c.preStop.seconds : 0;
}

interface ServingSleep {
  deployment: DeploymentModel;
  container: ContainerModel;
  seconds: number;
}

function deregistrationDelay({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const tg of model.targetGroups) {
    if (tg.deployments.length === 0) continue;
    const source = tg.attributesSource;
    const at = source?.from ?? tg.ingress.loaded;
    const path = source ? ['metadata', 'annotations', source.key] : ['metadata', 'annotations'];
    const writeOn = source ? `${source.from.ref.kind} ${source.from.ref.namespace}/${source.from.ref.name}` : `Ingress ${tg.ingress.namespace}/${tg.ingress.name}`;
    const bad = tg.attributesError ?? tg.deregistrationDelayError;
    if (bad) {
      out.push({
        rule: 'deregistration-delay',
        severity: 'error',
        message: `target group ${tg.key}: ${bad}. The controller rejects the annotation and the target group keeps its current attributes (AWS's ${AWS_DEFAULT_DEREGISTRATION_DELAY} s if never set)`,
        fix: `write ${TG_ATTRIBUTES_ANNOTATION} on ${writeOn} as key=value pairs separated by commas, with ${DEREGISTRATION_DELAY_KEY} a whole number of seconds in 0–3600 below the preStop sleep`,
        at,
        path,
      });
      continue;
    }
    const sleeps: ServingSleep[] = tg.deployments.flatMap((d) =>
      servingContainers(d, tg.servicePort)
        .filter((c) => c.preStop.kind !== 'unknown')
        .map((c) => ({ deployment: d, container: c, seconds: sleepOf(c) })),
    );
    if (sleeps.length === 0) continue; // only hooks whose duration cannot be read
    const shortest = sleeps.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const explicit = tg.deregistrationDelaySeconds;
    const delay = explicit ?? AWS_DEFAULT_DEREGISTRATION_DELAY;
    const delayText = explicit === undefined ? `no ${DEREGISTRATION_DELAY_KEY}, so AWS's default of ${delay} s applies` : `${DEREGISTRATION_DELAY_KEY}=${delay}`;
    const preStopText =
      shortest.seconds === 0
        ? `${deploymentName(shortest.deployment)} container ${shortest.container.name} has no preStop sleep (0 s)`
        : `the preStop sleep of ${deploymentName(shortest.deployment)} container ${shortest.container.name} is ${shortest.seconds} s`;
    const proposal =
      shortest.seconds === 0
        ? `add a preStop sleep (e.g. ${DEFAULT_MIN_PRESTOP_SECONDS} s, see prestop-missing) and set ${DEREGISTRATION_DELAY_KEY}=${delayBelow(DEFAULT_MIN_PRESTOP_SECONDS)}`
        : `set ${DEREGISTRATION_DELAY_KEY}=${delayBelow(shortest.seconds)}`;
    const fix = `${proposal} in ${TG_ATTRIBUTES_ANNOTATION} on ${writeOn}, keeping its other keys (a Service's annotation replaces the Ingress's as a whole). ${NOT_RESET}; \`alb-rollout plan --tune auto\` writes it for you`;
    if (!delayHolds(delay, shortest.seconds)) {
      out.push({
        rule: 'deregistration-delay',
        severity: 'error',
        message:
          `target group ${tg.key} has ${delayText} — not below: ${preStopText}. ` +
          `The old pod stops listening while its target is still draining, so requests the ALB still holds for it are cut (502), and the rollout waits ${delay} s for the last old targets to finish draining`,
        fix,
        at,
        path,
      });
    } else if (explicit === undefined) {
      out.push({
        rule: 'deregistration-delay',
        severity: 'warning',
        message: `target group ${tg.key} has ${delayText}; it fits below ${preStopText}, but the value in AWS is whatever was last written, not necessarily ${delay} s`,
        fix: `set ${DEREGISTRATION_DELAY_KEY} explicitly in ${TG_ATTRIBUTES_ANNOTATION} on ${writeOn}, below the preStop sleep. ${NOT_RESET}`,
        at,
        path,
      });
    }
  }
  return out;
}
