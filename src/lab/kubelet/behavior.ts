/**
 * What a lab container does, from its env var LAB_BEHAVIOR (comma-separated, e.g. "slow-start=5,error-rate=0.1"):
 *
 * | value                  | effect |
 * |---|---|
 * | `healthy` (default)    | listens once started; SIGTERM closes the listener and drops connections at once (→ RST/refused → ALB 502) |
 * | `slow-start=S`         | listens only S simulated seconds after the container started |
 * | `crash`                | never listens; exits shortly after each start → restarts with CrashLoopBackOff |
 * | `error-500`            | 500 on every path except `/healthz` (point the readinessProbe / ALB health check at `/healthz` so that the failure hits users only) |
 * | `error-500-after=S`    | like `error-500` once S simulated seconds have passed since it started listening |
 * | `error-rate=F`         | that fraction of requests (except `/healthz`) answer 500, pseudo-random but deterministic per pod |
 * | `slow-shutdown=S`      | after SIGTERM: no new connections, in-flight requests finish, the process exits S seconds later |
 * | `latency=S`            | every request (except `/healthz`, readiness probes and ALB health checks) is answered after S simulated seconds |
 * | `latency=M/P99`        | … after a lognormal draw with median M and 99th percentile P99 (the pod's seeded stream), at most 10 × P99 |
 * | `keepalive-timeout=S`  | the server closes a keep-alive connection idle for S simulated seconds (default 75, nginx's; Node's own default is 5) |
 *
 * `/healthz` always answers 200 while the server listens.
 */
import type { Obj } from '../controllers/util.js';
import { arrAt, strAt } from '../controllers/util.js';

export interface Behavior {
  slowStartSeconds: number;
  crash: boolean;
  error500: boolean;
  error500AfterSeconds?: number;
  errorRate: number;
  slowShutdownSeconds?: number;
  /** Response latency (simulated seconds): a constant, or a lognormal median/p99. */
  latency?: { median: number; p99: number };
  /** Idle keep-alive connections are closed after this many simulated seconds. */
  keepAliveTimeoutSeconds: number;
  /** The raw value, for messages. */
  raw: string;
  /** Parts that were not understood (reported in logs, otherwise ignored). */
  unknown: string[];
}

export const BEHAVIOR_ENV = 'LAB_BEHAVIOR';
/** The lab app's keep-alive timeout unless LAB_BEHAVIOR says otherwise: above the ALB's 60 s, as AWS recommends. */
export const DEFAULT_KEEPALIVE_SECONDS = 75;

export function parseBehavior(raw: string | undefined): Behavior {
  const b: Behavior = { slowStartSeconds: 0, crash: false, error500: false, errorRate: 0, keepAliveTimeoutSeconds: DEFAULT_KEEPALIVE_SECONDS, raw: raw ?? 'healthy', unknown: [] };
  for (const part of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split('=', 2).map((s) => s.trim()) as [string, string | undefined];
    const num = value === undefined ? Number.NaN : Number(value);
    switch (name) {
      case 'healthy':
        break;
      case 'crash':
        b.crash = true;
        break;
      case 'error-500':
        b.error500 = true;
        break;
      case 'slow-start':
        if (num >= 0) b.slowStartSeconds = num;
        else b.unknown.push(part);
        break;
      case 'error-500-after':
        if (num >= 0) b.error500AfterSeconds = num;
        else b.unknown.push(part);
        break;
      case 'error-rate':
        if (num >= 0 && num <= 1) b.errorRate = num;
        else b.unknown.push(part);
        break;
      case 'slow-shutdown':
        if (num >= 0) b.slowShutdownSeconds = num;
        else b.unknown.push(part);
        break;
      case 'keepalive-timeout':
        if (num > 0) b.keepAliveTimeoutSeconds = num;
        else b.unknown.push(part);
        break;
      case 'latency': {
        const [m, p] = (value ?? '').split('/').map(Number) as [number, number | undefined];
        const p99 = p ?? m;
        if (m >= 0 && p99 >= m) b.latency = { median: m, p99 };
        else b.unknown.push(part);
        break;
      }
      default:
        b.unknown.push(part);
    }
  }
  return b;
}

/** LAB_BEHAVIOR of a container spec (`value` only; `valueFrom` is ignored). */
export function containerBehavior(container: Obj): Behavior {
  const env = arrAt(container, 'env').find((e) => strAt(e, 'name') === BEHAVIOR_ENV);
  return parseBehavior(env ? strAt(env, 'value') : undefined);
}

/** Seconds a preStop hook takes: `sleep.seconds`, or an exec whose command contains `sleep N`; anything else is instant. */
export function preStopSeconds(container: Obj): number {
  const lifecycle = container.lifecycle as Obj | undefined;
  const preStop = lifecycle?.preStop as Obj | undefined;
  if (!preStop) return 0;
  const sleep = preStop.sleep as Obj | undefined;
  if (sleep && typeof sleep.seconds === 'number') return Math.max(0, sleep.seconds);
  const exec = preStop.exec as Obj | undefined;
  const command = Array.isArray(exec?.command) ? exec.command.map(String).join(' ') : '';
  const m = /\bsleep\s+(\d+(?:\.\d+)?)/.exec(command);
  return m ? Number(m[1]) : 0;
}

export function hasPreStop(container: Obj): boolean {
  const lifecycle = container.lifecycle as Obj | undefined;
  return !!lifecycle?.preStop;
}

/** The tag of an image reference (`repo:tag@digest` → tag; no tag → latest). */
export function imageVersion(image: string): string {
  const noDigest = image.split('@')[0] ?? image;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(colon + 1) : 'latest';
}

export { seededRandom } from '../random.js';
