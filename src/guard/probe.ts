import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { responsiveTimeout } from '../runnable-timeout.js';
import { judgeWindow, type Thresholds } from './policy.js';
import { percent, sleep, type Emit, type Measurement, type Signal } from './signal.js';

/**
 * The synthetic probe: HTTP(S) GETs at a steady rate to the URLs the caller configures (and nothing else),
 * a new connection per request (so every request goes through the ALB's target selection again, like the
 * seed's curl loop), a per-request timeout, no redirects followed. Outcomes are bucketed by the time they
 * were observed into windows (default 1 s); one measurement per window with the error rate.
 *
 * Errors are 5xx answers, timeouts and connection failures (refused, reset, truncated). DNS failures and
 * TLS verification failures are setup problems the rollout cannot cause: they are counted separately, and
 * a window with nothing else is an `error` measurement (never a reason to roll back).
 */

export const LAB_VERSION_HEADER = 'x-lab-image';

export interface ProbeOptions {
  /** Only these URLs are requested, round robin (http: or https:). */
  urls: readonly string[];
  /** Per URL (same index): the Host header and TLS server name (an Ingress rule's host when probing the ALB by its name). */
  perUrl?: ReadonlyArray<{ readonly host?: string; readonly servername?: string } | undefined>;
  ratePerSecond: number;
  /** Hard bounds: the probe stops at whichever comes first. */
  maxRequests: number;
  maxDurationMs: number;
  requestTimeoutMs: number;
  /** Measurement window (default 1000 ms). */
  windowMs?: number;
  thresholds: Thresholds;
  /** A response header naming the version that answered, read after `x-lab-image`. */
  versionHeader?: string;
  /** Extra request headers (e.g. `host` for an Ingress host rule when probing the ALB by address). */
  headers?: Record<string, string>;
  /** https: accept any certificate. */
  insecure?: boolean;
  name?: string;
  now?: () => number;
  /** How many error samples to keep for the report (default 50). */
  maxSamples?: number;
}

export type OutcomeKind = 'response' | 'timeout' | 'connection' | 'setup';

export interface ProbeOutcome {
  url: string;
  /** ms on the probe's clock. */
  startedAt: number;
  endedAt: number;
  kind: OutcomeKind;
  status?: number;
  /** Error code (ECONNRESET, ENOTFOUND…) or message for non-responses. */
  code?: string;
  version?: string;
}

export interface ProbeTotals {
  started: number;
  completed: number;
  errors: number;
  byStatus: Record<string, number>;
  byVersion: Record<string, number>;
  timeouts: number;
  connectionErrors: number;
  setupErrors: number;
}

interface Bucket {
  outcomes: ProbeOutcome[];
}

/** 3xx (a redirect the probe does not follow) and 401/403 (an authenticate action): the ALB answers, not the app. */
export function isNotTheApp(status: number): boolean {
  return (status >= 300 && status < 400) || status === 401 || status === 403;
}

export function isErrorOutcome(o: ProbeOutcome): boolean {
  if (o.kind === 'timeout' || o.kind === 'connection') return true;
  return o.kind === 'response' && (o.status ?? 0) >= 500;
}

export class Probe implements Signal {
  readonly kind = 'probe' as const;
  readonly name: string;
  private readonly urls: URL[];
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly sampleList: ProbeOutcome[] = [];
  private readonly total: ProbeTotals = { started: 0, completed: 0, errors: 0, byStatus: {}, byVersion: {}, timeouts: 0, connectionErrors: 0, setupErrors: 0 };

  constructor(private readonly o: ProbeOptions) {
    if (o.urls.length === 0) throw new Error('Probe: no URL to probe');
    this.urls = o.urls.map((u) => {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`Probe: ${u} is not an http(s) URL`);
      return url;
    });
    for (const [k, v] of [['ratePerSecond', o.ratePerSecond], ['maxRequests', o.maxRequests], ['maxDurationMs', o.maxDurationMs], ['requestTimeoutMs', o.requestTimeoutMs]] as const) {
      if (!(Number.isFinite(v) && v > 0)) throw new Error(`Probe: ${k} must be a positive number, got ${v}`);
    }
    this.windowMs = o.windowMs ?? 1000;
    this.now = o.now ?? Date.now;
    this.name = o.name ?? 'probe';
  }

  /** Error outcomes seen so far (bounded), oldest first. */
  samples(): ProbeOutcome[] {
    return [...this.sampleList];
  }

  totals(): ProbeTotals {
    return structuredClone(this.total);
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    const t0 = this.now();
    const buckets = new Map<number, Bucket>();
    let emitted = -1; // highest window index emitted
    const inflight = new Set<Promise<void>>();
    const stopRequests = new AbortController();
    const onAbort = (): void => stopRequests.abort();
    signal.addEventListener('abort', onAbort, { once: true });

    const record = (out: ProbeOutcome): void => {
      this.count(out);
      let k = Math.floor((out.endedAt - t0) / this.windowMs);
      if (k <= emitted) k = emitted + 1; // observed after its window was closed (clock jitter): next window
      const b = buckets.get(k) ?? { outcomes: [] };
      b.outcomes.push(out);
      buckets.set(k, b);
    };
    const flush = (upTo: number, lastEnd?: number): void => {
      for (let k = emitted + 1; k <= upTo; k++) {
        const start = t0 + k * this.windowMs;
        const end = lastEnd !== undefined && k === upTo ? Math.max(start, Math.min(lastEnd, start + this.windowMs)) : start + this.windowMs;
        emit(this.measure(buckets.get(k)?.outcomes ?? [], start, end));
        buckets.delete(k);
        emitted = k;
      }
    };
    const ticker = setInterval(() => flush(Math.floor((this.now() - t0) / this.windowMs) - 1), Math.max(10, Math.floor(this.windowMs / 4)));
    ticker.unref?.();

    try {
      const interval = 1000 / this.o.ratePerSecond;
      let nextAt = t0;
      let i = 0;
      while (!signal.aborted && this.total.started < this.o.maxRequests && this.now() - t0 < this.o.maxDurationMs) {
        const index = i++ % this.urls.length;
        const url = this.urls[index]!;
        const per = this.o.perUrl?.[index];
        this.total.started++;
        const o = per ? { ...this.o, headers: { ...(this.o.headers ?? {}), ...(per.host ? { host: per.host } : {}) }, ...(per.servername ? { servername: per.servername } : {}) } : this.o;
        const p = probeOnce(url, o, this.now, stopRequests.signal).then((out) => {
          if (out) record(out);
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        // A steady schedule; when the loop falls behind it does not burst to catch up.
        nextAt = Math.max(nextAt + interval, this.now());
        await sleep(nextAt - this.now(), signal);
      }
      await Promise.all([...inflight]);
    } finally {
      clearInterval(ticker);
      signal.removeEventListener('abort', onAbort);
      stopRequests.abort();
    }
    const end = this.now();
    const lastIndex = Math.max(emitted, ...buckets.keys(), Math.ceil((end - t0) / this.windowMs) - 1);
    flush(lastIndex, end);
  }

  private count(out: ProbeOutcome): void {
    const t = this.total;
    t.completed++;
    if (out.kind === 'response') t.byStatus[String(out.status)] = (t.byStatus[String(out.status)] ?? 0) + 1;
    else if (out.kind === 'timeout') t.timeouts++;
    else if (out.kind === 'connection') t.connectionErrors++;
    else t.setupErrors++;
    if (out.version) t.byVersion[out.version] = (t.byVersion[out.version] ?? 0) + 1;
    if (isErrorOutcome(out)) {
      t.errors++;
      if (this.sampleList.length < (this.o.maxSamples ?? 50)) this.sampleList.push(out);
    }
  }

  private measure(outcomes: ProbeOutcome[], start: number, end: number): Measurement {
    // Redirects and auth challenges come from the ALB's rules, not from the app: not a measurement of the release.
    const notApp = outcomes.filter((x) => x.kind === 'response' && isNotTheApp(x.status ?? 0));
    const counted = outcomes.filter((x) => x.kind !== 'setup' && !notApp.includes(x));
    const setup = outcomes.filter((x) => x.kind === 'setup');
    const errs = counted.filter(isErrorOutcome);
    const requests = counted.length;
    const errors = errs.length;
    const rate = requests > 0 ? errors / requests : 0;
    const details: Record<string, string | number> = {};
    const classes: Record<string, number> = {};
    const statuses = new Map<string, number>();
    const errorsByVersion = new Map<string, Map<string, number>>();
    for (const x of counted) {
      const label = x.kind === 'response' ? String(x.status) : x.kind === 'timeout' ? 'timeout' : (x.code ?? 'connection error');
      statuses.set(label, (statuses.get(label) ?? 0) + 1);
      if (x.kind === 'response') {
        const cls = `${Math.floor((x.status ?? 0) / 100)}xx`;
        classes[cls] = (classes[cls] ?? 0) + 1;
      }
      if (x.version) details[`version.${x.version}`] = Number(details[`version.${x.version}`] ?? 0) + 1;
      if (isErrorOutcome(x)) {
        const v = x.version ?? 'unknown';
        const m = errorsByVersion.get(v) ?? new Map<string, number>();
        m.set(label, (m.get(label) ?? 0) + 1);
        errorsByVersion.set(v, m);
      }
    }
    for (const [cls, n] of Object.entries(classes)) details[cls] = n;
    details.timeouts = counted.filter((x) => x.kind === 'timeout').length;
    details.connectionErrors = counted.filter((x) => x.kind === 'connection').length;
    if (setup.length > 0) details.setupErrors = setup.length;
    if (notApp.length > 0) details.notTheApp = notApp.length;
    if (counted.length > 0) details.maxLatencyMs = Math.max(...counted.map((x) => x.endedAt - x.startedAt));
    const firstError = errs.length > 0 ? Math.min(...errs.map((x) => x.endedAt)) : undefined;
    const window = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
    const statusText = [...statuses.entries()].map(([s, n]) => `${n}×${s}`).join(', ');
    const byVersion = [...errorsByVersion.entries()].map(([v, m]) => `${v}: ${[...m.entries()].map(([s, n]) => `${n}×${s}`).join(', ')}`).join('; ');
    const base: Omit<Measurement, 'verdict' | 'evidence'> = {
      signal: 'probe',
      source: this.name,
      at: new Date(this.now()).toISOString(),
      window,
      value: rate,
      requests,
      errors,
      ...(firstError !== undefined ? { firstErrorAt: new Date(firstError).toISOString() } : {}),
      details,
    };
    if (requests === 0 && setup.length > 0) {
      const codes = [...new Set(setup.map((x) => x.code ?? 'error'))].join(', ');
      return { ...base, verdict: 'error', evidence: `${setup.length} request(s) could not be sent (${codes}): check the probe URL (${setup[0]!.url}), DNS and TLS` };
    }
    const j = judgeWindow({ requests, errors }, this.o.thresholds);
    const notAppText = notApp.length > 0 ? `; ${notApp.length} answer(s) ${[...new Set(notApp.map((x) => x.status))].join('/')} from the ALB's redirect/auth rules — not measuring the app` : '';
    const seen = requests > 0 ? `${requests} request(s): ${statusText}${byVersion ? ` [errors by version: ${byVersion}]` : ''}` : 'no responses';
    return { ...base, verdict: j.verdict, evidence: `${seen}; ${percent(rate)} errors — ${j.reason}${notAppText}` };
  }
}

const SETUP_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** One GET on a fresh connection. Resolves with the outcome, or undefined when the probe was stopped. */
export function probeOnce(
  url: URL,
  o: Pick<ProbeOptions, 'requestTimeoutMs' | 'versionHeader' | 'headers' | 'insecure'> & { servername?: string },
  now: () => number,
  stop: AbortSignal,
): Promise<ProbeOutcome | undefined> {
  const startedAt = now();
  return new Promise((resolve) => {
    if (stop.aborted) return resolve(undefined);
    let settled = false;
    let status: number | undefined;
    let version: string | undefined;
    const finish = (out: Omit<ProbeOutcome, 'url' | 'startedAt' | 'endedAt'> | undefined): void => {
      if (settled) return;
      settled = true;
      cancelTimeout();
      stop.removeEventListener('abort', onStop);
      resolve(out ? { url: url.toString(), startedAt, endedAt: now(), ...out, ...(version ? { version } : {}) } : undefined);
    };
    const headers = { 'user-agent': 'alb-rollout-probe', accept: '*/*', connection: 'close', ...(o.headers ?? {}) };
    const opts = { method: 'GET', agent: false as const, headers, ...(url.protocol === 'https:' ? { rejectUnauthorized: !o.insecure, ...(o.servername ? { servername: o.servername } : {}) } : {}) };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res: IncomingMessage) => {
      status = res.statusCode ?? 0;
      version = headerValue(res, LAB_VERSION_HEADER) ?? (o.versionHeader ? headerValue(res, o.versionHeader) : undefined);
      res.on('data', () => undefined);
      res.on('end', () => finish({ kind: 'response', status }));
      res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'connection', code: `${err.code ?? 'ECONNRESET'} after ${status}` }));
      res.on('aborted', () => finish({ kind: 'connection', code: `body cut after ${status}` }));
    });
    // Time this process could not run (a loaded runner, a blocked event loop) is not the target's: not a timeout.
    const cancelTimeout = responsiveTimeout(o.requestTimeoutMs, () => {
      finish({ kind: 'timeout', code: `no complete answer within ${o.requestTimeoutMs} ms` });
      req.destroy();
    });
    const onStop = (): void => {
      finish(undefined);
      req.destroy();
    };
    stop.addEventListener('abort', onStop, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      if (SETUP_CODES.has(code)) finish({ kind: 'setup', code });
      else if (code === 'ETIMEDOUT') finish({ kind: 'timeout', code });
      else finish({ kind: 'connection', code: status !== undefined ? `${code} after ${status}` : code });
    });
    req.end();
  });
}

function headerValue(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  const s = Array.isArray(v) ? v[0] : v;
  return s && s !== '' ? s : undefined;
}
