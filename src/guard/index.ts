import type { Decision } from './policy.js';
import { Guard, type GuardDeps } from './guard.js';
import type { GuardOptions } from './options.js';
import { CloudWatchSignal, type CloudWatchBaseline, type PeriodReader } from './cloudwatch-signal.js';
import { Probe } from './probe.js';
import type { Signal } from './signal.js';
import { TargetHealthSignal, type TargetHealthSource } from './target-health.js';

/**
 * The guard's public surface, and `createGuard`, which turns parsed options plus what the rollout resolved
 * (ALB hostname, ARNs, the new pods) into a ready-to-start Guard.
 */

export { Guard, realTimers, type GuardDeps, type Timers } from './guard.js';
export { DEFAULT_CONFIDENCE, DEFAULT_POLICY, describeRate, evaluate, exceedsBaseline, judgeWindow, measuredEnough, type BaselineCounts, type Decision, type GuardPolicy, type MeasuredEnough, type SignalPolicy, type Thresholds } from './policy.js';
export { GUARD_FLAGS, parseDuration, parseGuardOptions, parseRate, type GuardOptions, type RawGuardOptions, type SignalMode } from './options.js';
export { isNotTheApp, Probe, type ProbeOptions, type ProbeOutcome, type ProbeTotals } from './probe.js';
export { ingressListeners, ingressProbeTarget, type IngressProbe } from './ingress-probe.js';
export { CloudWatchSignal, type CloudWatchBaseline, type CloudWatchSignalOptions, type PeriodReader } from './cloudwatch-signal.js';
export { TargetHealthSignal, type TargetHealthSignalOptions, type TargetHealthSource } from './target-health.js';
export { decideElb5xx, GROUP_NAME_ANNOTATION, type Elb5xxDecision, type SharingFacts } from './sharing.js';
export { SIGNAL_KINDS, type Measurement, type MeasurementVerdict, type Signal, type SignalKind } from './signal.js';

/** What the rollout knows when the guard starts. */
export interface GuardTargets {
  /** ALB hostnames of the Ingresses (probed as http://<hostname>/ when no probe-url is given). */
  hostnames: string[];
  /** For CloudWatch (the ALB of the Ingress); without it the CloudWatch signal is skipped. */
  loadBalancerArn?: string;
  /** Count the load balancer's HTTPCode_ELB_5XX_Count (decided by the caller from sharing); default: unless cloudwatch-elb-5xx is off. */
  includeElb5xx?: boolean;
  /** From the TargetGroupBindings. */
  targetGroupArns: string[];
  /** IPs of the new version's pods, read at every target-health observation. */
  newTargets: () => Iterable<string>;
}

export interface GuardFactoryDeps extends GuardDeps {
  elbv2?: TargetHealthSource;
  cloudwatch?: PeriodReader;
  /** The CloudWatch reader's clock at guard start (the lab's simulated epoch); default `now()`. */
  cloudwatchSince?: number;
  /** "Now" on the CloudWatch reader's clock (the AWS clock; the lab's is compressed). */
  cloudwatchNow?: () => number;
  /** Reader clock → wall clock, for the lab; default identity. */
  cloudwatchToWallClock?: (ms: number) => number;
  cloudwatchPollMs?: number;
  /** CloudWatch's baseline of the old version (or that there is none), once known. */
  onCloudwatchBaseline?: (b: CloudWatchBaseline) => void;
}

/** http://<hostname>/ for each hostname (the seed's curl loop); the probe never invents another host. */
export function defaultProbeUrls(hostnames: string[]): string[] {
  return hostnames.map((h) => `http://${h}/`);
}

export interface BuiltSignals {
  signals: Signal[];
  /** Signals that are on but could not be built, with why (for the log and the report). */
  skipped: string[];
}

export function buildSignals(options: GuardOptions, targets: GuardTargets, deps: Omit<GuardFactoryDeps, 'timers' | 'onFailure'>): BuiltSignals {
  const signals: Signal[] = [];
  const skipped: string[] = [];
  const { probe, cloudwatch, targetHealth, policy } = options;
  if (probe.mode !== 'off') {
    const urls = probe.urls.length > 0 ? probe.urls : defaultProbeUrls(targets.hostnames);
    if (urls.length === 0) skipped.push('probe: no probe-url and no ALB hostname to probe');
    else {
      signals.push(
        new Probe({
          urls,
          ...(probe.perUrl && probe.urls.length > 0 ? { perUrl: probe.perUrl } : {}),
          ratePerSecond: probe.ratePerSecond,
          maxRequests: probe.maxRequests,
          maxDurationMs: probe.maxDurationMs,
          requestTimeoutMs: probe.requestTimeoutMs,
          windowMs: probe.windowMs,
          thresholds: policy.signals.probe,
          headers: probe.headers,
          insecure: probe.insecure,
          now: deps.now,
          ...(probe.versionHeader ? { versionHeader: probe.versionHeader } : {}),
        }),
      );
    }
  }
  if (cloudwatch.mode !== 'off') {
    if (!deps.cloudwatch) skipped.push('cloudwatch: no CloudWatch reader');
    else if (!targets.loadBalancerArn) skipped.push('cloudwatch: the load balancer ARN is not known');
    else {
      signals.push(
        new CloudWatchSignal({
          reader: deps.cloudwatch,
          target: { loadBalancerArn: targets.loadBalancerArn, targetGroupArns: targets.targetGroupArns },
          includeElb5xx: targets.includeElb5xx ?? options.cloudwatch.elb5xx !== 'off',
          since: deps.cloudwatchSince ?? deps.now(),
          ...(deps.cloudwatchNow ? { readerNow: deps.cloudwatchNow } : {}),
          periodSeconds: cloudwatch.periodSeconds,
          settleSeconds: cloudwatch.settleSeconds,
          thresholds: policy.signals.cloudwatch,
          baselineSeconds: cloudwatch.baselineSeconds,
          ...(deps.onCloudwatchBaseline ? { onBaseline: deps.onCloudwatchBaseline } : {}),
          wallNow: deps.now,
          ...(deps.cloudwatchPollMs !== undefined ? { pollMs: deps.cloudwatchPollMs } : {}),
          ...(deps.cloudwatchToWallClock ? { toWallClock: deps.cloudwatchToWallClock } : {}),
        }),
      );
    }
  }
  if (targetHealth.mode !== 'off') {
    if (!deps.elbv2) skipped.push('target-health: no ELBv2 reader');
    else if (targets.targetGroupArns.length === 0) skipped.push('target-health: no target group ARN');
    else {
      signals.push(
        new TargetHealthSignal({
          elbv2: deps.elbv2,
          targetGroupArns: targets.targetGroupArns,
          newTargets: targets.newTargets,
          intervalMs: targetHealth.intervalMs,
          consecutiveUnhealthy: targetHealth.consecutiveUnhealthy,
          now: deps.now,
        }),
      );
    }
  }
  return { signals, skipped };
}

/** A Guard for the options and targets (not started). `skipped` says which signals could not be built. */
export function createGuard(options: GuardOptions, targets: GuardTargets, deps: GuardFactoryDeps): { guard: Guard; skipped: string[] } {
  const { signals, skipped } = buildSignals(options, targets, deps);
  return { guard: new Guard(signals, options.policy, deps), skipped };
}

/** One line for logs and summaries. */
export function describeDecision(d: Decision): string {
  const head =
    d.verdict === 'fail' ? `guard: ROLL BACK (${d.decidingSignal})` : d.verdict === 'pass' ? 'guard: pass' : d.verdict === 'inconclusive' ? 'guard: INCONCLUSIVE (not measured enough)' : 'guard: no decision';
  return `${head} — ${d.reason}${d.firstErrorAt ? `; first error at ${d.firstErrorAt}` : ''}${d.notes.length ? `; notes: ${d.notes.join('; ')}` : ''}`;
}
