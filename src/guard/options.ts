import { InputError, type InputProblem } from '../errors.js';
import { parseDuration, parseRate } from '../options.js';

export { parseDuration, parseRate } from '../options.js';
import { DEFAULT_CONFIDENCE, DEFAULT_POLICY, type GuardPolicy, type SignalPolicy } from './policy.js';
import type { SignalKind } from './signal.js';

/**
 * The guard's flags (CLI) / inputs (Action), parsed and validated once. Keys are the flag names without `--`;
 * values are the raw strings both edges deliver (lists may repeat or be comma/newline separated).
 *
 *   guard                     on | off                                   (on)
 *   bake                      duration the guard watches after the rollout (2m)
 *   probe                     on | require | off | report   (report = measured, never rolls back;
 *                             require = an unreachable probe URL is a preflight error, nothing applied)   (on)
 *   probe-url                 URL(s) to probe; none = the Ingress's ALB hostname, resolved by the caller
 *   probe-rate                requests per second (10)
 *   probe-timeout             per-request timeout (2s)
 *   probe-window              measurement window (1s)
 *   probe-max-requests        hard bound on requests (rate × probe-max-duration)
 *   probe-max-duration        hard bound on the probe's run time (15m)
 *   probe-header              "Name: value", repeatable (e.g. "Host: app.example.com")
 *   probe-insecure            true | false: accept any TLS certificate (false)
 *   probe-baseline-requests   requests sent to the live (old) version before apply, whose error rate the
 *                             release is judged against (200: with no error, the rate is below 1.5 % at 95 %)
 *   probe-baseline-max-duration  … unless this much time passes first (30s)
 *   version-header            response header naming the version that answered (x-lab-image is always read)
 *   max-error-rate            probe: a window fails above this rate, "5%" or "0.05" (5%); with a baseline,
 *                             above the old version's rate plus this, with `confidence`
 *   confidence                of that baseline judgement (probe and CloudWatch), "95%" or "0.95" (95%)
 *   max-errors                probe: … and with more than this many errors (1)
 *   min-requests              probe: fewer requests in a window = inconclusive (5)
 *   consecutive-failures      probe: failing windows in a row that roll back (2)
 *   cloudwatch                on | off | report (on; needs the ALB ARN, resolved by the caller)
 *   cloudwatch-period         seconds, a multiple of 60 (60)
 *   cloudwatch-settle         how long after a period ends its numbers are final (2m)
 *   cloudwatch-baseline       the settled minutes before apply read as the old version's baseline (5m; 0 = none)
 *   cloudwatch-max-error-rate (2%)   cloudwatch-max-errors (5)   cloudwatch-min-requests (50)
 *   cloudwatch-consecutive-failures (1)
 *   target-health             on | off | report (on)
 *   target-health-interval    between DescribeTargetHealth calls (5s)
 *   target-health-consecutive unhealthy observations in a row per target (2)
 *   cloudwatch-elb-5xx        auto | on | off: count the load balancer's HTTPCode_ELB_5XX_Count (auto = only when
 *                             the load balancer is not shared with other applications)   (auto)
 *   min-probe-windows         judged probe windows a `pass` needs (3)
 *   min-cloudwatch-periods    settled CloudWatch periods with enough requests a `pass` needs (1)
 *   min-target-health-checks  target-health checks of the new targets a `pass` needs (3)
 *     (any one signal reaching its minimum is enough; otherwise the verdict is inconclusive)
 *   measure-grace             after the bake, how long to wait for those minimums (default: what the signals need)
 *   on-inconclusive           fail | pass: exit code of an `unverified` run (fail = 1)   (fail)
 *
 * Durations: "500ms", "2s", "5m", "1h", "1m30s", or a plain number of seconds.
 */

export type RawGuardOptions = Record<string, string | string[] | boolean | undefined>;

export type SignalMode = 'on' | 'off' | 'report';

/** Immutable once parsed: a run that changes what is probed (the preflight, the lab's addresses) makes a new value. */
export interface ProbeSettings {
  readonly mode: SignalMode;
  /** Per URL (same index): Host header and TLS server name, set by the preflight from the Ingress. */
  readonly perUrl?: ReadonlyArray<{ readonly host?: string; readonly servername?: string } | undefined>;
  /** `--probe require`: an unreachable probe URL stops the run before anything is applied. */
  readonly required: boolean;
  readonly urls: readonly string[];
  ratePerSecond: number;
  requestTimeoutMs: number;
  windowMs: number;
  maxRequests: number;
  maxDurationMs: number;
  headers: Record<string, string>;
  insecure: boolean;
  versionHeader?: string;
  /** Requests the preflight sends to the live version for its baseline, and its deadline (ms). */
  baselineRequests: number;
  baselineMaxMs: number;
}

export type Elb5xxMode = 'auto' | 'on' | 'off';

export interface CloudWatchSettings {
  mode: SignalMode;
  /** Whether the load balancer's own 5xx count: auto = only when the load balancer serves this release alone. */
  elb5xx: Elb5xxMode;
  periodSeconds: number;
  settleSeconds: number;
  /** Seconds before apply whose settled periods are the old version's baseline (0 = judged against the thresholds alone). */
  baselineSeconds: number;
}

export interface TargetHealthSettings {
  mode: SignalMode;
  intervalMs: number;
  consecutiveUnhealthy: number;
}

export interface GuardOptions {
  enabled: boolean;
  policy: GuardPolicy;
  probe: ProbeSettings;
  cloudwatch: CloudWatchSettings;
  targetHealth: TargetHealthSettings;
  /** Exit code of a run whose guard verdict is inconclusive (result `unverified`): fail = 1, pass = 0. */
  onInconclusive: 'fail' | 'pass';
}

export const GUARD_FLAGS = [
  'guard',
  'bake',
  'probe',
  'probe-url',
  'probe-rate',
  'probe-timeout',
  'probe-window',
  'probe-max-requests',
  'probe-max-duration',
  'probe-header',
  'probe-insecure',
  'probe-baseline-requests',
  'probe-baseline-max-duration',
  'version-header',
  'max-error-rate',
  'max-errors',
  'min-requests',
  'consecutive-failures',
  'confidence',
  'cloudwatch',
  'cloudwatch-period',
  'cloudwatch-settle',
  'cloudwatch-baseline',
  'cloudwatch-max-error-rate',
  'cloudwatch-max-errors',
  'cloudwatch-min-requests',
  'cloudwatch-consecutive-failures',
  'target-health',
  'target-health-interval',
  'target-health-consecutive',
  'cloudwatch-elb-5xx',
  'min-probe-windows',
  'min-cloudwatch-periods',
  'min-target-health-checks',
  'measure-grace',
  'on-inconclusive',
] as const;

const MODES: readonly SignalMode[] = ['on', 'off', 'report'];

export function parseGuardOptions(raw: RawGuardOptions): GuardOptions {
  const problems: InputProblem[] = [];
  for (const k of Object.keys(raw)) {
    if (raw[k] !== undefined && !(GUARD_FLAGS as readonly string[]).includes(k)) {
      problems.push({ message: `unknown guard option "${k}"`, fix: `use one of: ${GUARD_FLAGS.join(', ')}` });
    }
  }
  const p = new Parser(raw, problems);
  const enabled = p.bool('guard', true);
  const bakeMs = p.duration('bake', 120_000, { min: 0, max: 6 * 3600_000 });

  const probeRequired = p.string('probe')?.toLowerCase() === 'require';
  const probeMode = probeRequired ? 'on' : p.mode('probe', 'on');
  const urls = p.list('probe-url');
  for (const u of urls) {
    let url: URL | undefined;
    try {
      url = new URL(u);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      problems.push({ message: `probe-url "${u}" is not an http:// or https:// URL`, fix: 'give the full URL, e.g. https://app.example.com/healthz' });
    }
  }
  const ratePerSecond = p.number('probe-rate', 10, { min: 0.1, max: 100 });
  const requestTimeoutMs = p.duration('probe-timeout', 2000, { min: 50, max: 120_000 });
  const windowMs = p.duration('probe-window', 1000, { min: 100, max: 600_000 });
  const maxDurationMs = p.duration('probe-max-duration', 15 * 60_000, { min: 1000, max: 24 * 3600_000 });
  const maxRequests = p.int('probe-max-requests', Math.ceil((ratePerSecond * maxDurationMs) / 1000), { min: 1, max: 10_000_000 });
  const headers: Record<string, string> = {};
  for (const h of p.list('probe-header', /\n/)) {
    const i = h.indexOf(':');
    const name = i > 0 ? h.slice(0, i).trim() : '';
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      problems.push({ message: `probe-header "${h}" is not "Name: value"`, fix: 'write it like "Host: app.example.com"; repeat the option for more headers' });
      continue;
    }
    headers[name.toLowerCase()] = h.slice(i + 1).trim();
  }
  const insecure = p.bool('probe-insecure', false);
  const baselineRequests = p.int('probe-baseline-requests', 200, { min: 1, max: 100_000 });
  const baselineMaxMs = p.duration('probe-baseline-max-duration', 30_000, { min: 100, max: 3600_000 });
  const confidence = p.rate('confidence', DEFAULT_CONFIDENCE);
  if (confidence < 0.5 || confidence >= 1) {
    problems.push({ message: `confidence ${confidence} is not between 50% and 100% (exclusive)`, fix: 'write a confidence such as 95% or 0.99' });
  }
  const versionHeader = p.string('version-header');
  if (versionHeader !== undefined && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(versionHeader)) {
    problems.push({ message: `version-header "${versionHeader}" is not a header name`, fix: 'give the name only, e.g. x-app-version' });
  }
  const probePolicy: SignalPolicy = { ...p.signalPolicy('', DEFAULT_POLICY.signals.probe, probeMode), confidence };
  if (windowMs * ratePerSecond < 1000 * probePolicy.minRequests && probeMode !== 'off') {
    problems.push({
      message: `the probe sends about ${((windowMs * ratePerSecond) / 1000).toFixed(1)} request(s) per ${windowMs} ms window, fewer than min-requests ${probePolicy.minRequests}: every window would be inconclusive`,
      fix: 'raise probe-rate or probe-window, or lower min-requests',
    });
  }

  const cwMode = p.mode('cloudwatch', 'on');
  const periodSeconds = p.int('cloudwatch-period', 60, { min: 60, max: 3600 });
  if (periodSeconds % 60 !== 0) {
    problems.push({ message: `cloudwatch-period ${periodSeconds} is not a multiple of 60`, fix: 'ALB metrics are standard resolution: use 60, 120, 300…' });
  }
  const settleSeconds = p.duration('cloudwatch-settle', 120_000, { min: 0, max: 3600_000 }) / 1000;
  const cwPolicy: SignalPolicy = { ...p.signalPolicy('cloudwatch-', DEFAULT_POLICY.signals.cloudwatch, cwMode), confidence };
  const cwBaselineSeconds = Math.ceil(p.duration('cloudwatch-baseline', 300_000, { min: 0, max: 24 * 3600_000 }) / 1000);

  const thMode = p.mode('target-health', 'on');
  const intervalMs = p.duration('target-health-interval', 5000, { min: 100, max: 600_000 });
  const consecutiveUnhealthy = p.int('target-health-consecutive', 2, { min: 1, max: 100 });
  const thPolicy: SignalPolicy = { ...DEFAULT_POLICY.signals['target-health'], decides: thMode === 'on' };
  const elb5xx = p.choice('cloudwatch-elb-5xx', ['auto', 'on', 'off'] as const, 'auto', 'auto (only when the load balancer is not shared), on or off');
  const minMeasured = {
    probeWindows: p.int('min-probe-windows', DEFAULT_POLICY.minMeasured.probeWindows, { min: 1, max: 100_000 }),
    cloudwatchPeriods: p.int('min-cloudwatch-periods', DEFAULT_POLICY.minMeasured.cloudwatchPeriods, { min: 1, max: 1000 }),
    targetHealthChecks: p.int('min-target-health-checks', DEFAULT_POLICY.minMeasured.targetHealthChecks, { min: 1, max: 100_000 }),
  };
  // By default, long enough for the quickest enabled signal to reach its minimum once more after the bake.
  const needMs = [
    probeMode !== 'off' ? minMeasured.probeWindows * windowMs : Number.POSITIVE_INFINITY,
    thMode !== 'off' ? minMeasured.targetHealthChecks * intervalMs : Number.POSITIVE_INFINITY,
  ];
  const fallbackGraceMs = Number.isFinite(Math.min(...needMs)) ? Math.min(Math.max(2000, Math.ceil(Math.min(...needMs) * 1.5)), 300_000) : 10_000;
  const measureGraceMs = p.duration('measure-grace', fallbackGraceMs, { min: 0, max: 6 * 3600_000 });
  const onInconclusive = p.choice('on-inconclusive', ['fail', 'pass'] as const, 'fail', 'fail (exit 1) or pass (exit 0) for an unverified run');

  if (problems.length > 0) throw new InputError(problems);
  const signals: Record<SignalKind, SignalPolicy> = { probe: probePolicy, cloudwatch: cwPolicy, 'target-health': thPolicy };
  return {
    enabled,
    policy: { signals, bakeSeconds: bakeMs / 1000, minMeasured, measureGraceSeconds: measureGraceMs / 1000 },
    onInconclusive,
    probe: {
      mode: probeMode,
      required: probeRequired,
      urls,
      ratePerSecond,
      requestTimeoutMs,
      windowMs,
      maxRequests,
      maxDurationMs,
      headers,
      insecure,
      ...(versionHeader !== undefined ? { versionHeader } : {}),
      baselineRequests,
      baselineMaxMs,
    },
    cloudwatch: { mode: cwMode, elb5xx, periodSeconds, settleSeconds, baselineSeconds: cwBaselineSeconds },
    targetHealth: { mode: thMode, intervalMs, consecutiveUnhealthy },
  };
}

class Parser {
  constructor(
    private readonly raw: RawGuardOptions,
    private readonly problems: InputProblem[],
  ) {}

  string(name: string): string | undefined {
    const v = this.raw[name];
    if (v === undefined || typeof v === 'boolean') return undefined;
    const s = (Array.isArray(v) ? v.at(-1) ?? '' : v).trim();
    return s === '' ? undefined : s;
  }

  list(name: string, sep: RegExp = /[,\n]/): string[] {
    const v = this.raw[name];
    if (v === undefined || typeof v === 'boolean') return [];
    return (Array.isArray(v) ? v : [v])
      .flatMap((x) => x.split(sep))
      .map((x) => x.trim())
      .filter((x) => x !== '');
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw[name];
    if (typeof v === 'boolean') return v;
    const s = this.string(name);
    if (s === undefined) return fallback;
    if (['true', 'on', 'yes', '1'].includes(s.toLowerCase())) return true;
    if (['false', 'off', 'no', '0'].includes(s.toLowerCase())) return false;
    this.problems.push({ message: `${name} "${s}" is not true/false`, fix: `set ${name} to true or false (on/off)` });
    return fallback;
  }

  mode(name: string, fallback: SignalMode): SignalMode {
    const v = this.raw[name];
    if (typeof v === 'boolean') return v ? 'on' : 'off';
    const s = this.string(name)?.toLowerCase();
    if (s === undefined) return fallback;
    if (s === 'true') return 'on';
    if (s === 'false') return 'off';
    if ((MODES as readonly string[]).includes(s)) return s as SignalMode;
    this.problems.push({ message: `${name} "${s}" is not one of ${MODES.join(', ')}`, fix: `set ${name} to on (may roll back), report (measure only) or off` });
    return fallback;
  }

  choice<T extends string>(name: string, values: readonly T[], fallback: T, says: string): T {
    const s = this.string(name)?.toLowerCase();
    if (s === undefined) return fallback;
    if ((values as readonly string[]).includes(s)) return s as T;
    this.problems.push({ message: `${name} "${s}" is not one of ${values.join(', ')}`, fix: `set ${name} to ${says}` });
    return fallback;
  }

  number(name: string, fallback: number, range: { min: number; max: number }): number {
    const s = this.string(name);
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n) || n < range.min || n > range.max) {
      this.problems.push({ message: `${name} "${s}" is not a number between ${range.min} and ${range.max}`, fix: `set ${name} to a number such as ${fallback}` });
      return fallback;
    }
    return n;
  }

  int(name: string, fallback: number, range: { min: number; max: number }): number {
    const s = this.string(name);
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isInteger(n) || n < range.min || n > range.max) {
      this.problems.push({ message: `${name} "${s}" is not a whole number between ${range.min} and ${range.max}`, fix: `set ${name} to a whole number such as ${fallback}` });
      return fallback;
    }
    return n;
  }

  duration(name: string, fallbackMs: number, range: { min: number; max: number }): number {
    const s = this.string(name);
    if (s === undefined) return fallbackMs;
    const ms = parseDuration(s);
    if (ms === undefined || ms < range.min || ms > range.max) {
      this.problems.push({
        message: `${name} "${s}" is not a duration between ${fmt(range.min)} and ${fmt(range.max)}`,
        fix: `write it like 500ms, 2s, 5m or 1m30s (a plain number means seconds); default ${fmt(fallbackMs)}`,
      });
      return fallbackMs;
    }
    return ms;
  }

  rate(name: string, fallback: number): number {
    const s = this.string(name);
    if (s === undefined) return fallback;
    const r = parseRate(s);
    if (r === undefined || r < 0 || r > 1) {
      this.problems.push({ message: `${name} "${s}" is not an error rate`, fix: `write a percentage such as 5% or a fraction such as 0.05 (between 0 and 1); default ${fallback * 100}%` });
      return fallback;
    }
    return r;
  }

  signalPolicy(prefix: string, defaults: SignalPolicy, mode: SignalMode): SignalPolicy {
    return {
      decides: mode === 'on',
      maxErrorRate: this.rate(`${prefix}max-error-rate`, defaults.maxErrorRate),
      maxErrors: this.int(`${prefix}max-errors`, defaults.maxErrors, { min: 0, max: 1_000_000_000 }),
      minRequests: this.int(`${prefix}min-requests`, defaults.minRequests, { min: 0, max: 1_000_000_000 }),
      consecutiveFailures: this.int(`${prefix}consecutive-failures`, defaults.consecutiveFailures, { min: 1, max: 1000 }),
    };
  }
}

function fmt(ms: number): string {
  if (ms % 3600_000 === 0 && ms > 0) return `${ms / 3600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
