import { activeHeaderRoute, argoServices } from '../plan/checks/argo-rollout.js';
import type { AwsClock } from '../aws/clock.js';
import type { CloudWatchReader } from '../aws/cloudwatch.js';
import type { Elbv2Reader, TargetHealth } from '../aws/elbv2.js';
import { InputError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { endpointPorts, readyAddresses, SERVICE_NAME_LABEL, targetOf } from '../plan/checks/endpoints.js';
import { selectorMatches } from '../manifests/model.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import type { Logger } from '../report/log.js';
import { createGuard, describeDecision, realTimers, type Decision, type GuardOptions, type Measurement } from './index.js';

/**
 * `alb-rollout analyze`: is the app behind an Ingress (or a Service, or an Argo Rollout's canary/preview Service) healthy in
 * its target groups, and quiet in the probe and CloudWatch over a window? The exit code is the whole contract for
 * an Argo Rollouts Job metric: 0 pass, 1 fail (2 bad input, 3 unreachable).
 */

export interface AnalyzeTarget {
  namespace: string;
  ingress?: string;
  service?: string;
  rollout?: string;
}

export interface AnalyzeOptions {
  target: AnalyzeTarget;
  windowMs: number;
  guard: GuardOptions;
}

export interface AnalyzeDeps {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  cloudwatch?: CloudWatchReader;
  clock: AwsClock;
  log: Logger;
  /** Maps an ALB hostname to the URL the probe should use (the lab's loopback data plane); default http://host/. */
  probeUrlFor?: (hostname: string, listener?: { protocol: string; port: number }) => Promise<string | undefined>;
}

export interface TargetGroupCheck {
  binding: string;
  service: string;
  targetGroupArn: string;
  targets: TargetHealth[];
  readyEndpoints: string[];
  problems: string[];
}

export interface AnalyzeResult {
  verdict: 'pass' | 'fail';
  reasons: string[];
  /** The judged target groups (the canary's, for an Argo canary). */
  targetGroups: TargetGroupCheck[];
  /** The stable/active Service's target groups: reported for comparison, never a reason to fail. */
  baseline: TargetGroupCheck[];
  /** What was judged, in words. */
  scope: string;
  decision: Decision;
  measurements: Measurement[];
  skippedSignals: string[];
  hostnames: string[];
}

export async function runAnalyze(options: AnalyzeOptions, deps: AnalyzeDeps): Promise<AnalyzeResult> {
  const { namespace } = options.target;
  const scope = await resolveScope(options.target, deps.kube);
  const { hostnames } = scope;
  const allBindings = (await deps.kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', namespace)).items;
  const bindingsOf = (services: string[]): KubeObject[] =>
    allBindings.filter((b) => {
      const ref = ((b.spec as JsonObject | undefined)?.serviceRef ?? {}) as JsonObject;
      if (!services.includes(String(ref.name ?? ''))) return false;
      return scope.servicePort === undefined || typeof ref.port !== 'number' || ref.port === scope.servicePort;
    });
  const bindings = bindingsOf(scope.judged);
  if (bindings.length === 0) {
    throw InputError.single(
      `no TargetGroupBinding in namespace ${namespace} refers to ${scope.judged.map((s) => `Service ${s}`).join(', ') || 'any Service'}${scope.servicePort !== undefined ? ` port ${scope.servicePort}` : ''} (${scope.describe})`,
      'check that the AWS Load Balancer Controller reconciled the Ingress (kubectl describe ingress; kubectl get targetgroupbindings -n ' + namespace + ')',
    );
  }
  const baselineBindings = bindingsOf(scope.baseline);
  const arns = bindings.map((b) => String((b.spec as JsonObject).targetGroupARN ?? '')).filter((a) => a !== '');
  const before = await checkTargetGroups(bindings, deps);
  const readyIps = new Set(before.flatMap((c) => c.readyEndpoints));
  const lbArn = (await deps.elbv2.targetGroup(arns[0] as string))?.loadBalancerArns[0];

  const labUrls = options.guard.probe.urls.length === 0 && deps.probeUrlFor ? (await Promise.all(hostnames.map((h) => deps.probeUrlFor?.(h)))).filter((u): u is string => typeof u === 'string') : [];
  // An Argo canary's header route (unless --probe-header says otherwise): the probe then reaches the canary alone.
  const headers = Object.keys(options.guard.probe.headers).length === 0 && scope.probeHeaders ? scope.probeHeaders : options.guard.probe.headers;
  const guardOptions: GuardOptions = { ...options.guard, probe: { ...options.guard.probe, headers, ...(labUrls.length > 0 ? { urls: labUrls } : {}) } };
  const measurements: Measurement[] = [];
  const { guard, skipped } = createGuard(
    guardOptions,
    { hostnames, ...(lbArn ? { loadBalancerArn: lbArn } : {}), targetGroupArns: arns, newTargets: () => readyIps },
    {
      now: Date.now,
      timers: realTimers,
      onFailure: () => undefined,
      stopOnFailure: true,
      onMeasurement: (m) => {
        measurements.push(m);
        if (m.verdict === 'failure' || m.verdict === 'error') deps.log.info(`${m.signal}: ${m.verdict} — ${m.evidence}`);
      },
      elbv2: deps.elbv2,
      ...(deps.cloudwatch ? { cloudwatch: deps.cloudwatch } : {}),
      // CloudWatch looks back over the window (its data for the past is already there) and on until the end.
      cloudwatchSince: deps.clock.now() - options.windowMs * deps.clock.scale,
      cloudwatchNow: () => deps.clock.now(),
      cloudwatchToWallClock: (ms) => deps.clock.toWall(ms),
    },
  );
  for (const s of skipped) deps.log.info(`signal skipped: ${s}`);
  deps.log.info(`analyzing ${scope.describe} for ${Math.round(options.windowMs / 1000)}s: ${arns.length} target group(s), ${readyIps.size} ready endpoint(s)`);
  guard.start();
  const decided = await Promise.race([guard.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), options.windowMs))]);
  const decision = decided ?? (await guard.stop());
  if (decided) await guard.stop();
  const after = await checkTargetGroups(bindings, deps);
  const baseline = await checkTargetGroups(baselineBindings, deps);
  const reasons: string[] = [];
  for (const c of after) reasons.push(...c.problems.map((p) => `${c.binding}: ${p}`));
  if (decision.verdict === 'fail') reasons.push(describeDecision(decision));
  return {
    verdict: reasons.length > 0 ? 'fail' : 'pass',
    reasons,
    targetGroups: after,
    baseline,
    scope: scope.describe,
    decision,
    measurements,
    skippedSignals: skipped,
    hostnames,
  };
}

/**
 * What to judge and what to compare it with. An Ingress or a Service: its Services, no baseline. An Argo Rollout:
 * the new version's Service is judged — `canaryService` (canary) or `previewService` (blue-green) — and the
 * stable/active Service is the baseline (reported, not judged); with `trafficRouting.alb` its Ingress gives the
 * ALB hostnames. A Rollout without those Services: every Service selecting its pods is judged.
 */
export interface AnalyzeScope {
  judged: string[];
  baseline: string[];
  hostnames: string[];
  /** The Service port the TargetGroupBindings must refer to (Argo's `trafficRouting.alb.servicePort`). */
  servicePort?: number;
  /** What the scope is, for the log and the report: `canary Service web-canary (stable web-stable)`. */
  describe: string;
  /** An Argo canary's active header route: the probe sends these headers, so it reaches the canary only. */
  probeHeaders?: Record<string, string>;
}

const ACTIONS_ANNOTATION = 'alb.ingress.kubernetes.io/actions.';

/** The Services an Ingress backend sends to: its Service, or for `port.name: use-annotation` those of its `actions.<service>` forward. */
export function backendServiceNames(ing: KubeObject): string[] {
  const spec = (ing.spec ?? {}) as JsonObject;
  const names = new Set<string>();
  const add = (backend: unknown): void => {
    const svc = (backend as JsonObject | undefined)?.service as JsonObject | undefined;
    const name = svc?.name;
    if (typeof name !== 'string') return;
    if ((svc?.port as JsonObject | undefined)?.name !== 'use-annotation') {
      names.add(name);
      return;
    }
    for (const n of forwardServiceNames(ing.metadata.annotations?.[`${ACTIONS_ANNOTATION}${name}`])) names.add(n);
  };
  add(spec.defaultBackend);
  for (const rule of (spec.rules ?? []) as JsonObject[]) for (const p of (((rule.http as JsonObject | undefined)?.paths ?? []) as JsonObject[])) add(p.backend);
  return [...names];
}

/** serviceName of each forward target group in an `actions.*` annotation (field names in any case, as LBC reads them). */
export function forwardServiceNames(raw: string | undefined): string[] {
  if (!raw) return [];
  let action: unknown;
  try {
    action = JSON.parse(raw);
  } catch {
    return [];
  }
  const get = (o: unknown, key: string): unknown => {
    if (!o || typeof o !== 'object') return undefined;
    const k = Object.keys(o).find((x) => x.toLowerCase() === key.toLowerCase());
    return k === undefined ? undefined : (o as Record<string, unknown>)[k];
  };
  const tgs = get(get(action, 'forwardConfig'), 'targetGroups');
  return Array.isArray(tgs) ? tgs.map((t) => get(t, 'serviceName')).filter((n): n is string => typeof n === 'string') : [];
}

function ingressHostnames(ing: KubeObject): string[] {
  return ((((ing.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress ?? []) as JsonObject[])
    .map((i) => i.hostname)
    .filter((h): h is string => typeof h === 'string');
}

/** The Rollout's part of the scope (pure: the Rollout and its Ingresses as read). */
export function rolloutScope(ro: KubeObject, ingresses: KubeObject[]): Omit<AnalyzeScope, 'judged'> & { judged?: string[] } {
  const svc = argoServices(ro);
  const hostnames = ingresses.flatMap(ingressHostnames);
  const stable = svc.stableService ? [svc.stableService] : [];
  if (svc.strategy === 'Canary' && svc.newService) {
    const port = svc.alb?.servicePort;
    const route = svc.alb ? activeHeaderRoute(ro) : undefined;
    const via = route ? `; the probe sends ${Object.entries(route.headers).map(([k, v]) => `${k}: ${v}`).join(', ')} (header route ${route.name}: the canary only)` : '';
    return {
      judged: [svc.newService],
      baseline: stable,
      hostnames,
      ...(port !== undefined ? { servicePort: port } : {}),
      ...(route ? { probeHeaders: route.headers } : {}),
      describe: `canary Service ${svc.newService}${stable.length ? ` (baseline: stable Service ${stable[0]})` : ''}${via}`,
    };
  }
  if (svc.strategy === 'BlueGreen' && svc.newService) {
    return { judged: [svc.newService], baseline: stable, hostnames, describe: `preview Service ${svc.newService}${stable.length ? ` (baseline: active Service ${stable[0]})` : ''}` };
  }
  if (svc.strategy === 'BlueGreen' && svc.stableService) {
    return { judged: [svc.stableService], baseline: [], hostnames, describe: `active Service ${svc.stableService} (no previewService)` };
  }
  return { baseline: [], hostnames, describe: 'the Services selecting its pods' };
}

/** The Ingresses of an Argo canary's ALB traffic routing (`ingress`, `ingresses`). */
export function rolloutIngressNames(ro: KubeObject): string[] {
  return argoServices(ro).alb?.ingresses ?? [];
}

async function resolveScope(t: AnalyzeTarget, kube: KubeClient): Promise<AnalyzeScope> {
  if (t.ingress) {
    const ing = await kube.get('networking.k8s.io/v1', 'Ingress', t.namespace, t.ingress);
    if (!ing) throw InputError.single(`Ingress ${t.namespace}/${t.ingress} does not exist`, `check the name: kubectl get ingress -n ${t.namespace}`);
    const services = backendServiceNames(ing);
    return { judged: services, baseline: [], hostnames: ingressHostnames(ing), describe: `Ingress ${t.namespace}/${t.ingress}` };
  }
  if (t.service) return { judged: [t.service], baseline: [], hostnames: [], describe: `Service ${t.namespace}/${t.service}` };
  if (t.rollout) {
    const ro = await kube.get('argoproj.io/v1alpha1', 'Rollout', t.namespace, t.rollout);
    if (!ro) throw InputError.single(`Rollout ${t.namespace}/${t.rollout} does not exist`, `check the name: kubectl get rollouts -n ${t.namespace}`);
    const ingresses: KubeObject[] = [];
    for (const name of rolloutIngressNames(ro)) {
      const ing = await kube.get('networking.k8s.io/v1', 'Ingress', t.namespace, name);
      if (!ing) throw InputError.single(`Ingress ${t.namespace}/${name} (the Rollout's trafficRouting.alb) does not exist`, `check spec.strategy.canary.trafficRouting.alb of Rollout ${t.namespace}/${t.rollout}`);
      ingresses.push(ing);
    }
    const scope = rolloutScope(ro, ingresses);
    const describe = `Rollout ${t.namespace}/${t.rollout}: ${scope.describe}`;
    if (scope.judged) return { ...scope, judged: scope.judged, describe };
    const labels = ((((ro.spec as JsonObject | undefined)?.template as JsonObject | undefined)?.metadata as JsonObject | undefined)?.labels ?? {}) as Record<string, string>;
    const judged = (await kube.list('v1', 'Service', t.namespace)).items.filter((s) => selectorMatches(((s.spec as JsonObject | undefined)?.selector ?? undefined) as Record<string, string> | undefined, labels)).map((s) => s.metadata.name);
    return { ...scope, judged, describe };
  }
  throw InputError.single('analyze needs --ingress, --service or --rollout', 'name what to analyze, e.g. --ingress web -n shop');
}

/** Every ready endpoint registered and healthy; nothing registered that is unhealthy. */
async function checkTargetGroups(bindings: KubeObject[], deps: AnalyzeDeps): Promise<TargetGroupCheck[]> {
  const out: TargetGroupCheck[] = [];
  for (const b of bindings) {
    const spec = (b.spec ?? {}) as JsonObject;
    const service = String((spec.serviceRef as JsonObject | undefined)?.name ?? '');
    const arn = String(spec.targetGroupARN ?? '');
    const slices = await deps.kube.list('discovery.k8s.io/v1', 'EndpointSlice', b.metadata.namespace ?? '', { labelSelector: `${SERVICE_NAME_LABEL}=${service}` });
    const ready = readyAddresses(slices.items, service);
    const targets = await deps.elbv2.targetHealth(arn);
    const problems: string[] = [];
    const ports = endpointPorts(slices.items, service);
    for (const ip of ready) {
      const t = targetOf(targets, ip, ports.get(ip));
      if (!t) problems.push(`ready endpoint ${ip} is not registered in the target group`);
      else if (t.state !== 'healthy') problems.push(`ready endpoint ${t.id}:${t.port} is ${t.state}${t.reason ? ` (${t.reason}: ${t.description ?? ''})` : ''}`);
    }
    for (const t of targets) {
      if (t.state === 'unhealthy' && !ready.has(t.id)) problems.push(`target ${t.id}:${t.port} is unhealthy (${t.reason ?? ''}) and is no ready endpoint`);
    }
    if (ready.size === 0) problems.push(`Service ${service} has no ready endpoint`);
    out.push({ binding: b.metadata.name, service, targetGroupArn: arn, targets, readyEndpoints: [...ready], problems });
  }
  return out;
}

export function renderAnalyzeText(r: AnalyzeResult): string {
  const out: string[] = [];
  out.push(`verdict: ${r.verdict.toUpperCase()} (${r.scope})`);
  const line = (c: TargetGroupCheck, role: string): string => {
    const states = c.targets.reduce<Record<string, number>>((acc, t) => ({ ...acc, [t.state]: (acc[t.state] ?? 0) + 1 }), {});
    return `  ${role}${c.binding} (Service ${c.service}): ${c.readyEndpoints.length} ready endpoint(s); targets ${Object.entries(states).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}`;
  };
  for (const c of r.targetGroups) out.push(line(c, ''));
  for (const c of r.baseline) out.push(`${line(c, 'baseline ')}${c.problems.length ? ` — ${c.problems.join('; ')} (not judged)` : ''}`);
  const bySignal = new Map<string, Measurement[]>();
  for (const m of r.measurements) bySignal.set(m.signal, [...(bySignal.get(m.signal) ?? []), m]);
  for (const [signal, ms] of bySignal) {
    const requests = ms.reduce((a, m) => a + (m.requests ?? 0), 0);
    const errors = ms.reduce((a, m) => a + (m.errors ?? 0), 0);
    out.push(`  ${signal}: ${ms.length} window(s), ${requests} request(s), ${errors} error(s), ${ms.filter((m) => m.verdict === 'failure').length} failing window(s)`);
  }
  for (const s of r.skippedSignals) out.push(`  skipped ${s}`);
  out.push(`  ${describeDecision(r.decision)}`);
  if (r.reasons.length > 0) {
    out.push('why it fails:');
    for (const reason of r.reasons) out.push(`  - ${reason}`);
  }
  return `${out.join('\n')}\n`;
}
