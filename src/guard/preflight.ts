import { lookup } from 'node:dns/promises';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { responsiveTimeout } from '../runnable-timeout.js';
import { isErrorOutcome, isNotTheApp, probeOnce, type ProbeOutcome } from './probe.js';
import { DEFAULT_CONFIDENCE, describeRate } from './policy.js';

/**
 * The probe's preflight: before anything is applied, can the probe reach its URL (DNS, TCP connect, TLS with SNI),
 * and what does the live version answer (the baseline)? A probe that cannot reach the ALB measures nothing, and its
 * connection errors say nothing about the release: the run then goes on without it (or stops, with
 * `--probe require`). The old version's own error rate is the baseline the release is judged against.
 */

export type ReachStage = 'dns' | 'connect' | 'tls' | 'timeout' | 'http';

export interface ProbeTarget {
  url: string;
  /** Host header (the Ingress rule's host when probing the ALB by its own name). */
  host?: string;
  /** TLS server name (SNI); default the URL's host. */
  servername?: string;
}

export interface Reachability {
  target: ProbeTarget;
  ok: boolean;
  /** Where it failed. */
  stage?: ReachStage;
  /** One line for the person on call: what failed, what was tried, what to do. */
  why?: string;
  /** Every step tried, in order, with its outcome. */
  tried: string[];
}

export interface Baseline {
  /** Answers of the app and failed requests (what a probe window counts: not redirects/auth answers, not DNS/TLS failures). */
  requests: number;
  /** HTTP answers (anything that reached the ALB). */
  responses: number;
  errors: number;
  rate: number;
  statuses: Record<string, number>;
  /** Redirects and auth challenges: the probe reaches the ALB but not the application. */
  notTheApp: number;
  /** How many requests the baseline wanted, and how long it measured (ms). */
  wanted: number;
  durationMs: number;
}

export interface PreflightOptions {
  timeoutMs: number;
  insecure: boolean;
  headers: Record<string, string>;
  ratePerSecond: number;
  /** How many requests the baseline sends to the live version (at the probe rate) … */
  baselineRequests: number;
  /** … unless this much time (ms) passes first. */
  baselineMaxMs: number;
  versionHeader?: string;
  now?: () => number;
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}

/** DNS, then TCP, then TLS (https:), each bounded by the timeout. */
export async function reach(target: ProbeTarget, o: Pick<PreflightOptions, 'timeoutMs' | 'insecure'>): Promise<Reachability> {
  const url = new URL(target.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const tried: string[] = [];
  const fail = (stage: ReachStage, why: string): Reachability => ({ target, ok: false, stage, why: `${why} (tried: ${tried.join('; ')})`, tried });
  let address = host;
  if (isIP(host) === 0) {
    try {
      const addrs = await withTimeout(lookup(host, { all: true }), o.timeoutMs, 'ETIMEOUT');
      address = addrs[0]?.address ?? host;
      tried.push(`DNS ${host} → ${addrs.map((a) => a.address).join(', ')}`);
    } catch (err) {
      const code = errCode(err);
      tried.push(`DNS ${host}: ${code}`);
      return fail(
        'dns',
        `cannot resolve ${host} from here (${code}): an internal (private) ALB is only resolvable inside its VPC, or the name is wrong. ` +
          'Fix: run where the ALB resolves (a runner in the VPC), give a URL that does with --probe-url, or --probe off',
      );
    }
  }
  const connected = await handshake(() => netConnect({ host: address, port }), 'connect', o.timeoutMs);
  if (!connected.ok) {
    tried.push(`TCP ${address}:${port}: ${connected.code}`);
    if (connected.code === 'timeout') {
      return fail('timeout', `no answer from ${address}:${port} within ${o.timeoutMs} ms: a security group or network ACL drops the runner's packets, or the ALB is private. Fix: allow the runner, probe from inside the VPC, or --probe off`);
    }
    return fail('connect', `${address}:${port} refuses connections (${connected.code}): no listener on port ${port}. Fix: check the Ingress's listen-ports annotation and the URL's scheme/port`);
  }
  tried.push(`TCP ${address}:${port} connected`);
  if (url.protocol === 'https:') {
    const servername = target.servername ?? (isIP(host) === 0 ? host : undefined);
    const tls = await handshake(() => tlsConnect({ host: address, port, rejectUnauthorized: !o.insecure, ...(servername ? { servername } : {}) }), 'secureConnect', o.timeoutMs);
    if (!tls.ok) {
      tried.push(`TLS to ${address}:${port}${servername ? ` (SNI ${servername})` : ''}: ${tls.code}`);
      return fail('tls', `the TLS handshake with ${address}:${port} failed (${tls.code}): the certificate does not match ${servername ?? host} or is not trusted here. Fix: probe the host the certificate names (the Ingress rule's host), trust its CA (NODE_EXTRA_CA_CERTS), or --probe-insecure true`);
    }
    tried.push(`TLS${servername ? ` (SNI ${servername})` : ''} ok`);
  }
  return { target, ok: true, tried };
}

/**
 * GETs at the probe rate until `baselineRequests` were sent or `baselineMaxMs` passed (at least one): what the live
 * version answers. Enough requests that its rate is known within a few percent: the release is judged against it.
 */
export async function measureBaseline(target: ProbeTarget, o: PreflightOptions): Promise<Baseline> {
  const now = o.now ?? Date.now;
  const url = new URL(target.url);
  const headers = { ...(target.host ? { host: target.host } : {}), ...o.headers };
  const stop = new AbortController();
  const outcomes: Array<Promise<ProbeOutcome | undefined>> = [];
  const interval = 1000 / o.ratePerSecond;
  const started = now();
  for (let i = 0; i < Math.max(1, o.baselineRequests) && (i === 0 || now() - started < o.baselineMaxMs); i++) {
    outcomes.push(
      probeOnce(url, { requestTimeoutMs: o.timeoutMs, headers, insecure: o.insecure, ...(target.servername ? { servername: target.servername } : {}), ...(o.versionHeader ? { versionHeader: o.versionHeader } : {}) }, now, stop.signal),
    );
    await new Promise((r) => setTimeout(r, interval));
  }
  const done = (await Promise.all(outcomes)).filter((x): x is ProbeOutcome => x !== undefined);
  const durationMs = now() - started;
  const statuses: Record<string, number> = {};
  let responses = 0;
  let errors = 0;
  let notTheApp = 0;
  let requests = 0;
  for (const x of done) {
    const label = x.kind === 'response' ? String(x.status) : (x.code ?? x.kind);
    statuses[label] = (statuses[label] ?? 0) + 1;
    if (x.kind === 'response') responses++;
    if (x.kind === 'response' && isNotTheApp(x.status ?? 0)) notTheApp++;
    else if (x.kind !== 'setup') requests++;
    if (isErrorOutcome(x)) errors++;
  }
  return { requests, responses, errors, rate: requests > 0 ? errors / requests : 0, statuses, notTheApp, wanted: Math.max(1, o.baselineRequests), durationMs };
}

/** What the baseline measured: requests, answers, the rate and its bounds; a baseline cut short by its deadline says so. */
export function describeBaseline(b: Baseline, confidence = DEFAULT_CONFIDENCE): string {
  const s = Object.entries(b.statuses)
    .map(([k, n]) => `${n}×${k}`)
    .join(', ');
  const sent = Object.values(b.statuses).reduce((a, n) => a + n, 0);
  const short = b.wanted > 1 && sent < b.wanted ? `; only ${sent} of the ${b.wanted} requests wanted before the deadline (a wide bound; raise --probe-baseline-max-duration or --probe-rate)` : '';
  const rate = b.requests > 0 ? `error rate ${describeRate(b, confidence)}` : 'none answered by the app';
  return `${sent} request(s) in ${(b.durationMs / 1000).toFixed(1)}s: ${s || 'none'}; ${rate}${short}`;
}

/** Opens a socket and waits for `event` (connect / secureConnect), an error, or the timeout; the socket is closed. */
function handshake(open: () => Socket, event: 'connect' | 'secureConnect', timeoutMs: number): Promise<{ ok: true } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = open();
    const cancel = responsiveTimeout(timeoutMs, () => {
      s.destroy();
      resolve({ ok: false, code: 'timeout' });
    });
    s.once(event, () => {
      cancel();
      s.destroy();
      resolve({ ok: true });
    });
    s.once('error', (err) => {
      cancel();
      s.destroy();
      resolve({ ok: false, code: errCode(err) });
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, code: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(Object.assign(new Error(code), { code })), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
