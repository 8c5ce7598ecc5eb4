import type { AwsClock } from '../aws/clock.js';
import type { Elbv2Reader } from '../aws/elbv2.js';
import { ExitCode } from '../errors.js';
import {
  createGuard,
  decideElb5xx,
  describeDecision,
  describeRate,
  GROUP_NAME_ANNOTATION,
  realTimers,
  type Decision,
  type Elb5xxDecision,
  type Guard,
  type GuardOptions,
  type Measurement,
  type PeriodReader,
  type SharingFacts,
} from '../guard/index.js';
import type { KubeClient } from '../kube/client.js';
import { describeBaseline, measureBaseline, reach, type Baseline, type ProbeTarget, type Reachability } from '../guard/preflight.js';
import { CLOUDWATCH_LATE_SECONDS } from '../guard/cloudwatch-signal.js';
import { ingressProbeTarget } from '../guard/ingress-probe.js';
import type { ProbeSettings } from '../guard/options.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import type { PlanRoute } from '../plan/phases.js';
import type { Preflight } from '../preflight/index.js';
import type { Logger } from '../report/log.js';
import type { Timeline } from '../report/timeline.js';
import { DeployError, type DeployDeps, type DeployOptions, type RunState } from './types.js';

/**
 * The 5xx guard as the deploy runner uses it: started when the workloads are applied, watched through the
 * bake window; its first failure trips the run once (the runner then rolls back).
 */

export class GuardTripped extends Error {
  constructor(readonly decision: Decision) {
    super(describeDecision(decision));
    this.name = 'GuardTripped';
  }
}

export interface GuardRunDeps {
  elbv2: Elbv2Reader;
  /** To tell whether the load balancer is shared (CloudWatch's ELB-wide 5xx); without it the ELB count is used. */
  kube?: KubeClient;
  cloudwatch?: PeriodReader;
  clock: AwsClock;
  log: Logger;
  now: () => number;
  probeUrlFor?: (hostname: string, listener?: { protocol: string; port: number }) => Promise<string | undefined>;
}

export interface GuardRun {
  guard: Guard;
  skipped: string[];
  /** Set at the first failure decision. */
  tripped(): Decision | undefined;
  /** Called when the guard trips, so that waits re-check at once. */
  onTrip(fn: () => void): void;
  measurements: Measurement[];
  /** Which CloudWatch metrics are judged, and why (ELB-wide 5xx only on an unshared load balancer). */
  cloudwatchMetrics?: string;
  /** What each signal judges the release against: the old version's measured baseline, or that there is none. */
  baselines: string[];
}

export async function startGuard(
  guardOptions: GuardOptions,
  targets: { hostnames: string[]; targetGroupArns: string[]; newTargets: () => Iterable<string>; preflight?: ProbeCheck; ingresses?: string[] },
  deps: GuardRunDeps,
  tl: Timeline,
): Promise<GuardRun> {
  const options = targets.preflight ? withPreflight(guardOptions, targets.preflight) : guardOptions;
  const labUrls =
    options.probe.urls.length === 0 && deps.probeUrlFor && !targets.preflight
      ? (await Promise.all(targets.hostnames.map((h) => deps.probeUrlFor?.(h)))).filter((u): u is string => typeof u === 'string')
      : [];
  const probe: ProbeSettings = labUrls.length > 0 ? { ...options.probe, urls: labUrls } : options.probe;
  const lbArn = targets.targetGroupArns[0] ? (await deps.elbv2.targetGroup(targets.targetGroupArns[0]).catch(() => undefined))?.loadBalancerArns[0] : undefined;
  let elb: Elb5xxDecision | undefined;
  if (lbArn && options.cloudwatch.mode !== 'off') {
    const facts = deps.kube ? await sharingFacts(deps.kube, deps.elbv2, { ingresses: targets.ingresses ?? [], hostnames: targets.hostnames, targetGroupArns: targets.targetGroupArns, loadBalancerArn: lbArn }) : { groupNames: [], otherIngresses: [], otherBindings: [], unknown: 'no Kubernetes client' };
    elb = decideElb5xx(options.cloudwatch.elb5xx, facts);
    deps.log.info(`guard cloudwatch judges ${elb.why}`);
    tl.add('guard', `cloudwatch judges ${elb.why}`, { elb5xx: elb.include });
  }
  let decision: Decision | undefined;
  const listeners: Array<() => void> = [];
  const measurements: Measurement[] = [];
  const baselines: string[] = [];
  const pb = options.policy.signals.probe.baseline;
  if (probe.mode !== 'off' && targets.preflight) {
    baselines.push(pb ? `probe: the old version's ${describeRate(pb, options.policy.signals.probe.confidence)}, ${pb.source}` : 'probe: no baseline (a first install): judged against the thresholds alone');
  }
  const { guard, skipped } = createGuard(
    { ...options, probe },
    { hostnames: targets.hostnames, targetGroupArns: targets.targetGroupArns, newTargets: targets.newTargets, ...(lbArn ? { loadBalancerArn: lbArn } : {}), ...(elb ? { includeElb5xx: elb.include } : {}) },
    {
      now: deps.now,
      timers: realTimers,
      elbv2: deps.elbv2,
      ...(deps.cloudwatch ? { cloudwatch: deps.cloudwatch } : {}),
      cloudwatchSince: deps.clock.now(),
      cloudwatchNow: () => deps.clock.now(),
      // A quarter period on the AWS clock (the lab's is compressed), so that a settled period is judged soon after it settles.
      cloudwatchPollMs: Math.max(200, Math.min(15_000, (options.cloudwatch.periodSeconds * 1000) / 4 / deps.clock.scale)),
      cloudwatchToWallClock: (ms) => deps.clock.toWall(ms),
      onCloudwatchBaseline: (b) => {
        baselines.push(`cloudwatch: ${b.text}`);
        deps.log.info(`guard cloudwatch ${b.text}`);
        tl.add('guard', `cloudwatch ${b.text}`, { baselinePeriods: b.periods, withData: b.withData, requests: b.counts?.requests ?? null, errors: b.counts?.errors ?? null });
      },
      onMeasurement: (m) => {
        measurements.push(m);
        if (m.verdict === 'failure') tl.add('guard', `${m.signal}: ${m.evidence}`, { signal: m.signal, verdict: m.verdict, errors: m.errors ?? null, requests: m.requests ?? null, windowStart: m.window.start, windowEnd: m.window.end });
      },
      onFailure: (d) => {
        decision = d;
        tl.add('guard', describeDecision(d), { verdict: d.verdict, signal: d.decidingSignal ?? null, firstErrorAt: d.firstErrorAt ?? null });
        deps.log.error(describeDecision(d));
        for (const l of listeners) l();
      },
    },
  );
  if (targets.preflight && targets.preflight.targets.length === 0 && options.probe.mode === 'off' && guardOptions.probe.mode !== 'off') {
    skipped.unshift(`probe: cannot reach the ALB: ${targets.preflight.unreachable.map((u) => u.why).join('; ')}`);
  }
  for (const s of skipped) {
    deps.log.warn(`guard signal skipped: ${s}`);
    tl.add('warning', `guard signal skipped: ${s}`);
  }
  guard.start();
  tl.add('guard', `guard started: ${guard.signals.map((s) => s.name).join(', ') || 'no signal'}`, { event: 'started' });
  deps.log.info(`guard started: ${guard.signals.map((s) => s.name).join(', ') || 'no signal'}`);
  return { guard, skipped, tripped: () => decision, onTrip: (fn) => listeners.push(fn), measurements, baselines, ...(elb ? { cloudwatchMetrics: elb.why } : {}) };
}

/**
 * Who else is on this load balancer: IngressGroups of the release's Ingresses, other Ingresses whose status names
 * the same hostname, TargetGroupBindings of other Services whose target group is on it (cluster-wide reads; what
 * cannot be read is said, not guessed).
 */
async function sharingFacts(
  kube: KubeClient,
  elbv2: Elbv2Reader,
  o: { ingresses: string[]; hostnames: string[]; targetGroupArns: string[]; loadBalancerArn: string },
): Promise<SharingFacts> {
  const facts: SharingFacts = { groupNames: [], otherIngresses: [], otherBindings: [] };
  const mine = new Set(o.ingresses);
  const hosts = new Set(o.hostnames);
  try {
    for (const ing of (await kube.list('networking.k8s.io/v1', 'Ingress', '')).items) {
      const key = `${ing.metadata.namespace ?? ''}/${ing.metadata.name}`;
      const group = ing.metadata.annotations?.[GROUP_NAME_ANNOTATION];
      if (mine.has(key)) {
        if (group && !facts.groupNames.includes(group)) facts.groupNames.push(group);
        continue;
      }
      const host = (((ing.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.hostname;
      if (typeof host === 'string' && hosts.has(host)) facts.otherIngresses.push(key);
    }
    const releaseTgs = new Set(o.targetGroupArns);
    const bindings = await kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', '');
    for (const b of bindings.items) {
      const arn = String(((b.spec ?? {}) as JsonObject).targetGroupARN ?? '');
      if (!arn || releaseTgs.has(arn)) continue;
      const tg = await elbv2.targetGroup(arn).catch(() => undefined);
      if (tg?.loadBalancerArns.includes(o.loadBalancerArn)) facts.otherBindings.push(`${b.metadata.namespace ?? ''}/${b.metadata.name}`);
    }
  } catch (err) {
    facts.unknown = `listing Ingresses/TargetGroupBindings cluster-wide failed: ${(err as Error).message}`;
  }
  return facts;
}

/** A summary of the guard's measurements for the report: per signal, windows, requests, errors, versions seen. */
export function summarizeMeasurements(ms: Measurement[]): Array<{ signal: string; windows: number; requests: number; errors: number; failingWindows: number; firstErrorAt?: string }> {
  const by = new Map<string, Measurement[]>();
  for (const m of ms) by.set(m.signal, [...(by.get(m.signal) ?? []), m]);
  return [...by.entries()].map(([signal, list]) => {
    const firstError = list.find((m) => (m.errors ?? 0) > 0);
    return {
      signal,
      windows: list.length,
      requests: list.reduce((a, m) => a + (m.requests ?? 0), 0),
      errors: list.reduce((a, m) => a + (m.errors ?? 0), 0),
      failingWindows: list.filter((m) => m.verdict === 'failure').length,
      ...(firstError ? { firstErrorAt: firstError.firstErrorAt ?? firstError.window.start } : {}),
    };
  });
}

/** What the probe's preflight found: the targets it can reach, the ones it cannot (and why), the old version's baseline. */
export interface ProbeCheck {
  targets: ProbeTarget[];
  unreachable: Reachability[];
  /** The live (old) version's answers before the release; absent on a first install. */
  baseline?: Baseline;
  /** The bake, lengthened so that CloudWatch can judge settled minutes when the probe cannot measure. */
  bakeSeconds?: number;
}

/** The guard options as the preflight leaves them: only reachable targets, the old version's answers as the probe's baseline, the bake. */
export function withPreflight(options: GuardOptions, check: ProbeCheck): GuardOptions {
  const probe: ProbeSettings = {
    ...options.probe,
    ...(check.targets.length === 0 ? { mode: 'off' as const } : {}),
    urls: check.targets.map((t) => t.url),
    // A Host header given with --probe-header wins over the Ingress's.
    ...(options.probe.headers.host === undefined ? { perUrl: check.targets.map((t) => ({ ...(t.host ? { host: t.host } : {}), ...(t.servername ? { servername: t.servername } : {}) })) } : {}),
  };
  const out: GuardOptions = { ...options, probe, policy: { ...options.policy, signals: { ...options.policy.signals } } };
  const b = check.baseline;
  if (b && b.requests > 0) {
    out.policy.signals.probe = { ...out.policy.signals.probe, baseline: { requests: b.requests, errors: b.errors, source: `the probe's ${b.requests} request(s) before apply` } };
  }
  if (check.bakeSeconds !== undefined) out.policy.bakeSeconds = Math.max(out.policy.bakeSeconds, check.bakeSeconds);
  return out;
}

/** The baselines of several probe targets as one (the probe's windows mix them round robin). */
function addBaselines(a: Baseline, b: Baseline): Baseline {
  const statuses = { ...a.statuses };
  for (const [k, n] of Object.entries(b.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
  const requests = a.requests + b.requests;
  const errors = a.errors + b.errors;
  return { requests, errors, rate: requests > 0 ? errors / requests : 0, responses: a.responses + b.responses, notTheApp: a.notTheApp + b.notTheApp, statuses, wanted: a.wanted + b.wanted, durationMs: a.durationMs + b.durationMs };
}

/**
 * The URLs the probe uses: the given ones, or each Ingress's ALB as the Ingress defines it (listeners, the rule's
 * host and path); the lab maps its ALB hostnames to loopback addresses.
 */
async function probeTargets(options: GuardOptions, albs: Array<{ ingress?: KubeObject; hostname: string }>, deps: Pick<DeployDeps, 'probeUrlFor' | 'log'>): Promise<ProbeTarget[]> {
  if (options.probe.urls.length > 0) return options.probe.urls.map((url) => ({ url }));
  const out: ProbeTarget[] = [];
  for (const { ingress, hostname } of albs) {
    const t = ingress ? ingressProbeTarget(ingress, hostname) : { url: `http://${hostname}/`, chosen: 'the ALB hostname' };
    const url = new URL(t.url);
    const listener = { protocol: url.protocol === 'https:' ? 'HTTPS' : 'HTTP', port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
    const mapped = deps.probeUrlFor ? await deps.probeUrlFor(hostname, listener) : undefined;
    let target: ProbeTarget = { url: t.url, host: t.host ?? hostname, ...(t.servername ? { servername: t.servername } : {}) };
    if (mapped) {
      // The lab's ALB: the loopback address of that listener stands for the ALB's name; scheme, path, Host and
      // TLS server name (the rule's host, else the ALB's name as a client of its URL would send) as the Ingress says.
      const base = new URL(mapped);
      target = { ...target, url: `${url.protocol}//${base.host}${url.pathname}${url.search}`, ...(url.protocol === 'https:' && !t.servername ? { servername: hostname } : {}) };
    }
    deps.log.info(`probe target ${t.url}${target.url !== t.url ? ` (${target.url})` : ''}: ${t.chosen}`);
    out.push(target);
  }
  return out;
}

/**
 * Before anything is applied (or, on a first install, once routing is ready and before the workloads): can the
 * probe reach its URLs, and what does the live version answer? Unreachable: say why and go on without the probe,
 * with a bake long enough for CloudWatch; `--probe require`: stop (exit 2).
 */
export async function probePreflight(
  pre: Preflight,
  options: DeployOptions,
  deps: DeployDeps,
  tl: Timeline,
  state: RunState,
  when: 'before-apply' | 'after-routing',
  /** Every route of the waited workloads — the set's and those found live in the cluster (the cluster-routes step runs first). */
  routes: readonly PlanRoute[],
): Promise<void> {
  const g = options.guard;
  if (!g?.enabled || g.probe.mode === 'off' || state.probeCheck || routes.length === 0) return;
  const manifest = (ns: string, name: string): KubeObject | undefined => pre.set.objects.find((o) => o.ref.kind === 'Ingress' && o.ref.namespace === ns && o.ref.name === name)?.object;
  const albs: Array<{ ingress?: KubeObject; hostname: string }> = [];
  let update = false;
  if (when === 'before-apply') {
    const ingresses = [...new Map(routes.flatMap((r) => (r.ingress ? [[`${r.ingress.namespace}/${r.ingress.name}`, r.ingress] as const] : []))).values()];
    for (const ing of ingresses) {
      const live = await deps.kube.get('networking.k8s.io/v1', 'Ingress', ing.namespace, ing.name);
      const hostname = (((live?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.hostname;
      // The Ingress as this run leaves it: the set's, or (a route found in the cluster) the live one.
      const ingress = manifest(ing.namespace, ing.name) ?? live;
      if (typeof hostname === 'string') albs.push({ hostname, ...(ingress ? { ingress } : {}) });
    }
    // A first install (no ALB yet): checked once routing is ready.
    if (albs.length < ingresses.length && g.probe.urls.length === 0) return;
    update = pre.model.deployments.length > 0;
    for (const d of pre.model.deployments) if (!(await deps.kube.get('apps/v1', 'Deployment', d.namespace, d.name))) update = false;
  } else {
    for (const [key, hostname] of state.hostnames) {
      const [ns = '', name = ''] = key.split('/');
      const ingress = manifest(ns, name);
      albs.push({ hostname, ...(ingress ? { ingress } : {}) });
    }
  }
  const targets = await probeTargets(g, albs, deps);
  if (targets.length === 0) return;
  const check: ProbeCheck = { targets: [], unreachable: [] };
  for (const t of targets) {
    const r = await reach(t, { timeoutMs: g.probe.requestTimeoutMs, insecure: g.probe.insecure });
    if (r.ok) check.targets.push(t);
    else check.unreachable.push(r);
  }
  const baselineOptions = {
    timeoutMs: g.probe.requestTimeoutMs,
    insecure: g.probe.insecure,
    headers: g.probe.headers,
    ratePerSecond: g.probe.ratePerSecond,
    // A first install has no live version to baseline: one request shows that HTTP answers (and what).
    baselineRequests: update ? g.probe.baselineRequests : 1,
    baselineMaxMs: g.probe.baselineMaxMs,
    ...(g.probe.versionHeader ? { versionHeader: g.probe.versionHeader } : {}),
  };
  for (const t of [...check.targets]) {
    const b = await measureBaseline(t, baselineOptions);
    if (b.responses === 0) {
      check.targets.splice(check.targets.indexOf(t), 1);
      check.unreachable.push({ target: t, ok: false, stage: 'http', why: `${t.url} accepts connections but never answered HTTP (${describeBaseline(b)})`, tried: [] });
      continue;
    }
    if (b.notTheApp === b.responses) {
      check.targets.splice(check.targets.indexOf(t), 1);
      check.unreachable.push({
        target: t,
        ok: false,
        stage: 'http',
        why: `${t.url}${t.host ? ` (Host ${t.host})` : ''} answers only redirects or auth challenges (${describeBaseline(b)}): the ALB's rules answer, not the app — the probe would not measure it. Fix: --probe-url of a path without authentication, or --probe-header with what the rule needs`,
        tried: [],
      });
      continue;
    }
    if (update) {
      check.baseline = check.baseline ? addBaselines(check.baseline, b) : b;
      const confidence = g.policy.signals.probe.confidence;
      const line = `probe baseline of the live version at ${t.url}: ${describeBaseline(b, confidence)} — the release's probe windows are judged against it`;
      tl.add('guard', line, { requests: b.requests, errors: b.errors, wanted: b.wanted, durationMs: Math.round(b.durationMs) });
      deps.log.info(line);
    }
  }
  if (check.targets.length === 0) {
    const why = check.unreachable.map((u) => `${u.target.url}: ${u.why}`).join('\n  ');
    if (g.probe.required) {
      throw new DeployError(`--probe require: the probe cannot reach the load balancer, so the guard could not measure this release${when === 'before-apply' ? '; nothing was applied' : ''}:\n  ${why}`, 'preflight', ExitCode.invalidInput);
    }
    check.bakeSeconds = cloudwatchBakeSeconds(g, deps);
    const cw = g.cloudwatch.mode === 'off' ? 'CloudWatch is off, so only target health can measure' : `the bake is at least ${check.bakeSeconds}s so that CloudWatch can judge ${g.policy.minMeasured.cloudwatchPeriods} settled period(s)`;
    const line = `probe cannot reach the load balancer; going on with the other signals (${cw}):\n  ${why}`;
    tl.add('warning', line);
    deps.log.warn(line);
  }
  state.probeCheck = check;
}

/**
 * Wall seconds for CloudWatch to judge `min-cloudwatch-periods` whole periods after the guard starts: the periods,
 * then the later of settle and the last moment their datapoints may be published.
 */
function cloudwatchBakeSeconds(g: GuardOptions, deps: Pick<DeployDeps, 'clock'>): number {
  const scale = deps.clock?.scale ?? 1;
  const settled = Math.max(g.cloudwatch.settleSeconds, CLOUDWATCH_LATE_SECONDS);
  const awsSeconds = (g.policy.minMeasured.cloudwatchPeriods + 1) * g.cloudwatch.periodSeconds + settled + g.cloudwatch.periodSeconds / 4;
  return Math.ceil(awsSeconds / scale);
}

/** Result `unverified`: what could not be measured, and how to fix it. */
export function unmeasuredMessage(d: Decision, run: GuardRun): string {
  const fixes = [
    ...run.skipped.map((s) => `  - ${s}`),
    ...d.notes.map((n) => `  - ${n}`),
  ];
  const o = run.guard.policy;
  return (
    `the rollout completed and the guard saw no failure, but it could not measure enough to call the release healthy: ${d.reason}` +
    (fixes.length > 0 ? `\n${fixes.join('\n')}` : '') +
    `\nFix: make a signal measure — a probe URL reachable from here (--probe-url), CloudWatch with traffic (--cloudwatch on, a bake of a few periods), or target health — ` +
    `or lower the minimums (--min-probe-windows ${o.minMeasured.probeWindows}, --min-cloudwatch-periods ${o.minMeasured.cloudwatchPeriods}, --min-target-health-checks ${o.minMeasured.targetHealthChecks}); ` +
    '--on-inconclusive pass makes an unverified run exit 0.'
  );
}
