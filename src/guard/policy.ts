import { lowerBound, upperBound, upperTail } from './stats.js';
import { errorRate, percent, sourceOf, type Measurement, type MeasurementVerdict, type SignalKind, type WindowCounts } from './signal.js';

/**
 * The rollback policy, as pure functions: when is a window failing, and when do failing windows mean
 * "roll back". Built to never roll back on noise: a window fails only when it has enough requests, more
 * than `maxErrors` errors *and* an error rate above `maxErrorRate`; a signal decides only after
 * `consecutiveFailures` failing windows in a row.
 *
 * With the probe defaults (1 s windows at 10 requests/s; fail at > 5 % and ≥ 2 errors, twice in a row), a
 * 0.1 % background of stray 500s triggers with a probability of about 2·10⁻⁹ per window, while a sustained
 * 50 % failure triggers within two windows.
 */

export interface Thresholds {
  /** A window fails only when its error rate (0..1) is above this (with a baseline: above the baseline's rate plus this) … */
  maxErrorRate: number;
  /** … and it has more than this many errors. */
  maxErrors: number;
  /** Fewer requests than this in a window: inconclusive (not judged). */
  minRequests: number;
  /** The old version's errors, measured before the release: the window is judged against it, with `confidence`. */
  baseline?: BaselineCounts;
  /** Confidence of the baseline judgement (0.5..1, default DEFAULT_CONFIDENCE). */
  confidence?: number;
}

/** What the old (live) version answered before the release. */
export interface BaselineCounts {
  requests: number;
  errors: number;
  /** Where it was measured, for messages ("the probe's 200 requests before apply"). */
  source: string;
}

/**
 * With a baseline, one window of a release fails only when its errors are too many to be the baseline's rate plus
 * the margin at this confidence; 95 % per window, and the probe needs two failing windows in a row.
 */
export const DEFAULT_CONFIDENCE = 0.95;

/** The baseline's rate and its one-sided bounds at `confidence`, for reports: "8.0% (95% interval 4.0–14.0%)". */
export function describeRate(c: { requests: number; errors: number }, confidence = DEFAULT_CONFIDENCE): string {
  if (c.requests <= 0) return 'no requests: rate unknown';
  const pct = `${Math.round(confidence * 100)}%`;
  return `${percent(errorRate(c))} (${pct} bounds ${percent(lowerBound(c.errors, c.requests, confidence))}–${percent(upperBound(c.errors, c.requests, confidence))} from ${c.requests} request(s))`;
}

/**
 * The judgement against a baseline: the window's rate is above the baseline's (its upper bound at `confidence`, so
 * that a baseline measured from few requests is given the benefit of the doubt) plus the margin, with `confidence`
 * — the probability of at least this many errors at that limit rate (a one-sided binomial test) is below 1 − confidence.
 */
export function exceedsBaseline(c: WindowCounts, baseline: { requests: number; errors: number }, margin: number, confidence = DEFAULT_CONFIDENCE): { exceeds: boolean; limit: number; pValue: number } {
  const limit = Math.min(1, upperBound(baseline.errors, baseline.requests, confidence) + margin);
  const pValue = c.requests > 0 ? upperTail(c.errors, c.requests, limit) : 1;
  return { exceeds: c.requests > 0 && pValue < 1 - confidence, limit, pValue };
}

export interface SignalPolicy extends Thresholds {
  /** Whether a failing streak of this signal rolls back; false = observed and reported only. */
  decides: boolean;
  /** Failing windows in a row needed (a success resets the streak; inconclusive and error windows do not). */
  consecutiveFailures: number;
}

/**
 * What "measured enough" means: a `pass` needs at least one signal to reach its minimum of judged windows
 * (success or failure; inconclusive and error windows do not count) since the guard started.
 */
export interface MeasuredEnough {
  /** Probe windows with enough requests to be judged. */
  probeWindows: number;
  /** Settled CloudWatch periods with enough requests to be judged. */
  cloudwatchPeriods: number;
  /** Target-health observations that saw the new targets. */
  targetHealthChecks: number;
}

export interface GuardPolicy {
  signals: Record<SignalKind, SignalPolicy>;
  /** How long the guard keeps watching after the rollout completed (phase 5). */
  bakeSeconds: number;
  /** Minimums for a `pass`. */
  minMeasured: MeasuredEnough;
  /**
   * After the bake window, how much longer the guard waits for the minimums when they are not reached yet
   * (signals still measuring); then the verdict is `inconclusive`.
   */
  measureGraceSeconds: number;
}

export const DEFAULT_POLICY: GuardPolicy = {
  signals: {
    // Seconds: a synthetic request every 100 ms, judged per second.
    probe: { decides: true, maxErrorRate: 0.05, maxErrors: 1, minRequests: 5, consecutiveFailures: 2, confidence: DEFAULT_CONFIDENCE },
    // Minutes: settled CloudWatch periods confirm what the probe sees (and catch what it cannot: real users' paths).
    cloudwatch: { decides: true, maxErrorRate: 0.02, maxErrors: 5, minRequests: 50, consecutiveFailures: 1, confidence: DEFAULT_CONFIDENCE },
    // A new target the ALB marks unhealthy (the signal itself requires consecutive observations per target).
    'target-health': { decides: true, maxErrorRate: 0, maxErrors: 0, minRequests: 0, consecutiveFailures: 1 },
  },
  bakeSeconds: 120,
  minMeasured: { probeWindows: 3, cloudwatchPeriods: 1, targetHealthChecks: 3 },
  measureGraceSeconds: 30,
};

export interface WindowJudgement {
  verdict: Extract<MeasurementVerdict, 'success' | 'failure' | 'inconclusive'>;
  reason: string;
}

/** Judges one window's counts against thresholds. */
export function judgeWindow(c: WindowCounts, t: Thresholds): WindowJudgement {
  const rate = errorRate(c);
  if (c.requests < t.minRequests) {
    return { verdict: 'inconclusive', reason: `${c.requests} request(s), fewer than the ${t.minRequests} needed to judge` };
  }
  const summary = `${c.errors} error(s) in ${c.requests} request(s) = ${percent(rate)}`;
  if (t.baseline && t.baseline.requests > 0) {
    const confidence = t.confidence ?? DEFAULT_CONFIDENCE;
    const b = t.baseline;
    const x = exceedsBaseline(c, b, t.maxErrorRate, confidence);
    const against = `the old version's ${percent(errorRate(b))} (${b.errors} of ${b.requests}, ${b.source}; at most ${percent(x.limit - t.maxErrorRate)} at ${Math.round(confidence * 100)}%) + ${percent(t.maxErrorRate)}`;
    if (x.exceeds && c.errors > t.maxErrors) {
      return { verdict: 'failure', reason: `${summary}: above ${against} (p = ${x.pValue.toPrecision(2)}; more than ${t.maxErrors} error(s))` };
    }
    return { verdict: 'success', reason: `${summary}: not above ${against} with ${Math.round(confidence * 100)}% confidence${c.errors > t.maxErrors ? ` (p = ${x.pValue.toPrecision(2)})` : ''}` };
  }
  if (rate > t.maxErrorRate && c.errors > t.maxErrors) {
    return { verdict: 'failure', reason: `${summary} > ${percent(t.maxErrorRate)} (and more than ${t.maxErrors} error(s))` };
  }
  return { verdict: 'success', reason: `${summary}, within ${percent(t.maxErrorRate)} / ${t.maxErrors} error(s)` };
}

export interface Decision {
  /** inconclusive: the bake window passed without a failure, but the signals did not measure enough to say `pass`. */
  verdict: 'pass' | 'fail' | 'pending' | 'inconclusive';
  reason: string;
  /** The signal instance whose failing streak decided (verdict fail). */
  decidingSignal?: string;
  decidingKind?: SignalKind;
  /** ISO time of the first error of the deciding streak. */
  firstErrorAt?: string;
  /** The windows of the deciding streak. */
  failingWindows?: Measurement[];
  /** Failing streaks of signals that may not decide, and signals that could not measure: for the report. */
  notes: string[];
  /** Judged windows per signal kind (what counts towards "measured enough"). */
  measured?: Record<SignalKind, number>;
}

export interface EvaluateContext {
  /** When the bake window started (ms, same clock as `now`); without it the verdict is never `pass`. */
  bakeStartedAt?: number;
}

interface Streak {
  source: string;
  kind: SignalKind;
  windows: Measurement[];
  /** When the streak reached its length (ms). */
  reachedAt: number;
  /** First error of the episode: walking back from the streak over windows that had errors. */
  firstErrorAt?: string;
}

/**
 * Decides from the whole history (any order; sorted by window end per signal instance).
 * fail: a deciding signal had `consecutiveFailures` failing windows in a row (the earliest such streak wins).
 * pass: the bake window has passed without that. pending: otherwise.
 */
export function evaluate(history: readonly Measurement[], policy: GuardPolicy, now: number, ctx: EvaluateContext = {}): Decision {
  const bySource = new Map<string, Measurement[]>();
  for (const m of history) {
    const k = sourceOf(m);
    const list = bySource.get(k) ?? [];
    list.push(m);
    bySource.set(k, list);
  }
  const notes: string[] = [];
  const triggered: Streak[] = [];
  const progress: string[] = [];
  const measured: Record<SignalKind, number> = { probe: 0, cloudwatch: 0, 'target-health': 0 };
  for (const [source, list] of bySource) {
    const sorted = [...list].sort((a, b) => Date.parse(a.window.end) - Date.parse(b.window.end) || Date.parse(a.at) - Date.parse(b.at));
    const kind = sorted[0]!.signal;
    const p = policy.signals[kind];
    const need = Math.max(1, p.consecutiveFailures);
    let streak: Measurement[] = [];
    let hit: Streak | undefined;
    const counts: Record<MeasurementVerdict, number> = { success: 0, failure: 0, inconclusive: 0, error: 0 };
    let streakStart = 0;
    sorted.forEach((m, i) => {
      counts[m.verdict]++;
      if (hit) return;
      if (m.verdict === 'failure') {
        if (streak.length === 0) streakStart = i;
        streak.push(m);
        if (streak.length >= need) hit = { source, kind, windows: streak, reachedAt: Date.parse(m.at), ...episodeStart(sorted, streakStart, i) };
      } else if (m.verdict === 'success') {
        streak = [];
      }
    });
    measured[kind] += counts.success + counts.failure;
    const tally = `${source}: ${sorted.length} window(s) (${counts.success} ok, ${counts.failure} failing, ${counts.inconclusive} inconclusive${counts.error ? `, ${counts.error} unmeasured` : ''})`;
    progress.push(hit || streak.length === 0 ? tally : `${tally}; ${streak.length} failing in a row of ${need} needed`);
    if (counts.error > 0 && counts.error === sorted.length) {
      notes.push(`${source} could not measure: ${sorted.at(-1)!.evidence}`);
    }
    if (hit) {
      if (p.decides) triggered.push(hit);
      else notes.push(`${source} failed ${hit.windows.length} window(s) in a row but may not decide: ${hit.windows.at(-1)!.evidence}`);
    }
  }
  if (triggered.length > 0) {
    triggered.sort((a, b) => a.reachedAt - b.reachedAt);
    const t = triggered[0]!;
    const first = t.windows[0]!;
    const firstErrorAt = t.firstErrorAt ?? first.window.start;
    return {
      verdict: 'fail',
      reason: `${t.source}: ${t.windows.length} failing window(s) in a row (${first.window.start} – ${t.windows.at(-1)!.window.end}): ${t.windows.at(-1)!.evidence}`,
      decidingSignal: t.source,
      decidingKind: t.kind,
      firstErrorAt,
      failingWindows: t.windows,
      notes,
      measured,
    };
  }
  const summary = progress.length > 0 ? progress.join('; ') : 'no measurements yet';
  if (ctx.bakeStartedAt !== undefined) {
    const endsAt = ctx.bakeStartedAt + policy.bakeSeconds * 1000;
    if (now >= endsAt) {
      const enough = measuredEnough(measured, policy.minMeasured);
      if (enough.ok) return { verdict: 'pass', reason: `bake window of ${policy.bakeSeconds}s passed without a rollback decision, ${enough.by}: ${summary}`, notes, measured };
      const graceEndsAt = endsAt + policy.measureGraceSeconds * 1000;
      if (now < graceEndsAt) {
        return { verdict: 'pending', reason: `bake window over, waiting up to ${Math.ceil((graceEndsAt - now) / 1000)}s more for enough measurements (${enough.missing}): ${summary}`, notes, measured };
      }
      return {
        verdict: 'inconclusive',
        reason: `no failure seen, but nothing measured enough to call the release healthy (${enough.missing}): ${summary}`,
        notes,
        measured,
      };
    }
    return { verdict: 'pending', reason: `baking, ${Math.ceil((endsAt - now) / 1000)}s left: ${summary}`, notes, measured };
  }
  return { verdict: 'pending', reason: summary, notes, measured };
}

/** Whether any signal reached its minimum of judged windows; `missing` says what each one lacks. */
export function measuredEnough(measured: Record<SignalKind, number>, min: MeasuredEnough): { ok: boolean; by: string; missing: string } {
  const need: Array<[SignalKind, number, string]> = [
    ['probe', min.probeWindows, 'judged probe window(s)'],
    ['cloudwatch', min.cloudwatchPeriods, 'settled CloudWatch period(s) with enough requests'],
    ['target-health', min.targetHealthChecks, 'target-health check(s) of the new targets'],
  ];
  const hit = need.find(([k, n]) => measured[k] >= Math.max(1, n));
  return {
    ok: hit !== undefined,
    by: hit ? `measured by ${hit[0]} (${measured[hit[0]]} ${hit[2]})` : '',
    missing: need.map(([k, n, what]) => `${k}: ${measured[k]} of ${Math.max(1, n)} ${what}`).join(', '),
  };
}

/**
 * The first error of the episode that ends in the streak [start, end]: the earliest `firstErrorAt` from the
 * streak's start back over the windows right before it that also had errors (a window with a stray error
 * that did not fail on its own still marks when the trouble began).
 */
function episodeStart(sorted: Measurement[], start: number, end: number): { firstErrorAt?: string } {
  let from = start;
  while (from > 0 && (sorted[from - 1]!.errors ?? 0) > 0) from--;
  for (let i = from; i <= end; i++) {
    const at = sorted[i]!.firstErrorAt;
    if (at !== undefined) return { firstErrorAt: at };
  }
  return {};
}
