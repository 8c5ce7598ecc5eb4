import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InputError } from '../errors.js';
import { parseDuration, parseRate } from '../guard/options.js';
import type { LabApiServer } from './apiserver/index.js';
import type { AwsAccount } from './aws/index.js';
import type { LabClock } from './timing.js';

/**
 * Fault injection for a running lab: one spec grammar for `lab up --faults SPEC` and `lab fault --lab DIR SPEC`,
 * applied to the parts it names (the AWS account gateway, the API server, the LBC), changeable while the lab runs
 * through a loopback control endpoint (its URL is `control` in lab.json). Every probability is decided by the lab's
 * seeded PRNG (streams `aws/faults` and `apiserver/faults`).
 *
 * SPEC is comma-separated `key=value`; a key that is not given keeps its current value; `clear` resets all:
 *   elbv2-throttle=P   fraction of ELBv2 calls (LBC and SDK clients alike) answered 400 Throttling "Rate exceeded"
 *   elbv2-5xx=P        fraction of ELBv2 calls answered 500 InternalFailure
 *   kube-5xx=P         fraction of non-watch Kubernetes API requests answered 500 InternalError
 *   watch-drop=D       watch streams closed after D of world time (e.g. 30s, 2m; 0 or off: never); open ones close now
 *   webhook=down|up    the LBC's pod readiness-gate webhook (down: pods are admitted without gates, failurePolicy Ignore)
 *   lbc=stop|start|restart   the AWS Load Balancer Controller (stopped: no registrations, no gates)
 *   node-loss=N        the node under N running pods (seeded pick) goes away now: they vanish without preStop or
 *                      SIGTERM, their IPs become blackholes; 40 s later not Ready, 60 s later deleted and replaced
 * P is a fraction (0.2) or a percentage (20%).
 */

export interface LabFaults {
  elbv2Throttle: number;
  elbv2Errors: number;
  kube5xx: number;
  /** World seconds; 0 = off. */
  watchDropSeconds: number;
  webhook: 'up' | 'down';
  lbc: 'running' | 'stopped';
  /** Pods lost by the last node-loss (`namespace/name`); a one-shot action, not a standing fault. */
  lostPods?: string[];
}

export const NO_FAULTS: LabFaults = { elbv2Throttle: 0, elbv2Errors: 0, kube5xx: 0, watchDropSeconds: 0, webhook: 'up', lbc: 'running' };

/** A parsed spec: the changes it makes (absent keys unchanged), `clear` first when given, `lbcAction` last. */
export interface FaultChange {
  clear?: boolean;
  set: Partial<Omit<LabFaults, 'lbc'>>;
  lbcAction?: 'stop' | 'start' | 'restart';
  /** node-loss=N: that many running pods lose their node now. */
  nodeLoss?: number;
}

const KEYS = ['elbv2-throttle', 'elbv2-5xx', 'kube-5xx', 'watch-drop', 'webhook', 'lbc', 'node-loss'] as const;
const FIX = 'use e.g. --faults elbv2-throttle=20%,kube-5xx=0.05,watch-drop=30s,webhook=down,lbc=restart,node-loss=1 (or clear)';

function probability(key: string, value: string): number {
  const p = parseRate(value);
  if (p === undefined || p < 0 || p > 1) throw InputError.single(`fault ${key}=${value}: not a probability from 0 to 1 (or 0% to 100%)`, FIX);
  return p;
}

export function parseFaultSpec(spec: string): FaultChange {
  const change: FaultChange = { set: {} };
  const items = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw InputError.single('empty fault spec', FIX);
  for (const item of items) {
    if (item === 'clear' || item === 'none') {
      change.clear = true;
      continue;
    }
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key)) throw InputError.single(`unknown fault "${key}" (known: ${KEYS.join(', ')}, clear)`, FIX);
    if (value === '') throw InputError.single(`fault ${key} needs a value (${key}=…)`, FIX);
    switch (key) {
      case 'elbv2-throttle':
        change.set.elbv2Throttle = probability(key, value);
        break;
      case 'elbv2-5xx':
        change.set.elbv2Errors = probability(key, value);
        break;
      case 'kube-5xx':
        change.set.kube5xx = probability(key, value);
        break;
      case 'watch-drop': {
        const ms = value === 'off' ? 0 : parseDuration(value);
        if (ms === undefined) throw InputError.single(`fault watch-drop=${value}: not a duration`, 'use e.g. watch-drop=30s (world time) or watch-drop=off');
        change.set.watchDropSeconds = ms / 1000;
        break;
      }
      case 'webhook':
        if (value !== 'up' && value !== 'down') throw InputError.single(`fault webhook=${value}: not up or down`, 'use webhook=down (pods admitted without gates) or webhook=up');
        change.set.webhook = value;
        break;
      case 'lbc':
        if (value !== 'stop' && value !== 'start' && value !== 'restart') throw InputError.single(`fault lbc=${value}: not stop, start or restart`, 'use lbc=stop, lbc=start or lbc=restart');
        change.lbcAction = value;
        break;
      case 'node-loss':
        if (!/^[1-9]\d*$/.test(value)) throw InputError.single(`fault node-loss=${value}: not a whole number of pods`, 'use node-loss=N, N ≥ 1: the running pods that lose their node');
        change.nodeLoss = Number(value);
        break;
    }
  }
  return change;
}

/** The spec that reproduces `f` (for lab.json and the CLI's answer). */
export function formatFaults(f: LabFaults): string {
  const parts: string[] = [];
  if (f.elbv2Throttle > 0) parts.push(`elbv2-throttle=${f.elbv2Throttle}`);
  if (f.elbv2Errors > 0) parts.push(`elbv2-5xx=${f.elbv2Errors}`);
  if (f.kube5xx > 0) parts.push(`kube-5xx=${f.kube5xx}`);
  if (f.watchDropSeconds > 0) parts.push(`watch-drop=${f.watchDropSeconds}s`);
  if (f.webhook === 'down') parts.push('webhook=down');
  if (f.lbc === 'stopped') parts.push('lbc=stop');
  return parts.length > 0 ? parts.join(',') : 'none';
}

/**
 * kube-5xx and watch-drop are injected by the embedded API server; a real kube-apiserver has no such hooks, so on
 * the real tier asking for them is an error (nothing applied) rather than a fault that silently never happens.
 */
export function assertFaultsAvailable(change: FaultChange, embeddedApiServer: boolean, realLbc = false): void {
  if (realLbc && (change.set.webhook !== undefined || change.lbcAction !== undefined)) {
    throw InputError.single(
      'fault webhook/lbc: not available with --lbc real (they switch the lab\'s LBC emulation; the real controller is a process of its own; nothing was changed)',
      'use --lbc emulated for webhook and lbc faults; with --lbc real elbv2-throttle, elbv2-5xx and clear work',
    );
  }
  if (embeddedApiServer) return;
  const asked = [
    ...(change.set.kube5xx ? [`kube-5xx=${change.set.kube5xx}`] : []),
    ...(change.set.watchDropSeconds ? [`watch-drop=${change.set.watchDropSeconds}s`] : []),
  ];
  if (asked.length === 0) return;
  throw InputError.single(
    `fault ${asked.join(', ')}: not available on the real control plane tier (a real kube-apiserver has no fault hooks; nothing was changed)`,
    'use --control-plane embedded for kube-5xx and watch-drop; on the real tier elbv2-throttle, elbv2-5xx, webhook, lbc and clear work',
  );
}

/** What the fault injector drives (the lab wiring provides it). */
export interface FaultTargets {
  clock: LabClock;
  account: AwsAccount;
  /** The embedded API server; absent on the real tier (kube-5xx and watch-drop are then refused). */
  api?: LabApiServer;
  /** The real AWS Load Balancer Controller runs: webhook and lbc faults are refused. */
  realLbc?: boolean;
  setWebhookEnabled(enabled: boolean): void;
  stopLbc(): Promise<void>;
  startLbc(): void;
  /** Fault node-loss: `count` running pods lose their node; returns them (`namespace/name`). */
  loseNode(count: number): string[];
}

export class FaultInjector {
  private current: LabFaults = { ...NO_FAULTS };

  constructor(private readonly t: FaultTargets) {}

  get faults(): LabFaults {
    return { ...this.current };
  }

  async apply(change: FaultChange): Promise<LabFaults> {
    assertFaultsAvailable(change, this.t.api !== undefined, this.t.realLbc === true);
    const { lostPods: _last, ...current } = this.current;
    const next: LabFaults = { ...(change.clear ? { ...NO_FAULTS, lbc: current.lbc } : current), ...change.set };
    const touched = (...keys: Array<keyof FaultChange['set']>): boolean => change.clear === true || keys.some((k) => change.set[k] !== undefined);
    // Only the parts a change names are rewritten (faults configured directly on the account or API server stay).
    if (touched('elbv2Throttle', 'elbv2Errors')) {
      const aws = this.t.account.getFaults();
      this.t.account.setFaults({ ...aws, elbv2: { ...aws.elbv2, throttleRate: next.elbv2Throttle, errorRate: next.elbv2Errors } });
    }
    if (this.t.api && touched('kube5xx', 'watchDropSeconds')) {
      const { dropWatchAfterMs: _old, ...api } = this.t.api.getFaults();
      this.t.api.setFaults({ ...api, errorRate: next.kube5xx, ...(next.watchDropSeconds > 0 ? { dropWatchAfterMs: this.t.clock.ms(next.watchDropSeconds) } : {}) });
      if (next.watchDropSeconds > 0 && next.watchDropSeconds !== this.current.watchDropSeconds) this.t.api.dropWatches();
    }
    if (touched('webhook')) this.t.setWebhookEnabled(next.webhook === 'up');
    const action = change.lbcAction ?? (change.clear && this.current.lbc === 'stopped' ? 'start' : undefined);
    if (action === 'stop' || action === 'restart') {
      if (this.current.lbc === 'running') await this.t.stopLbc();
      next.lbc = 'stopped';
    }
    if (action === 'start' || action === 'restart') {
      if (next.lbc === 'stopped') this.t.startLbc();
      next.lbc = 'running';
    }
    if (change.nodeLoss) next.lostPods = this.t.loseNode(change.nodeLoss);
    this.current = next;
    return this.faults;
  }
}

/**
 * The loopback control endpoint: `GET /faults` → {faults, spec}; `POST /faults` with a spec as the body → applies it
 * and answers the same; a bad spec → 400 {error, fix}. Bound to 127.0.0.1 only.
 */
export class FaultControlServer {
  url = '';
  private readonly server: Server;

  constructor(private readonly injector: FaultInjector) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        this.server.unref();
        resolve(this.url);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.url !== '/faults') return send(404, { error: `no such path ${req.url ?? ''}`, fix: 'use GET or POST /faults' });
    if (req.method === 'GET') return send(200, { faults: this.injector.faults, spec: formatFaults(this.injector.faults) });
    if (req.method !== 'POST') return send(405, { error: `method ${req.method ?? ''} not allowed`, fix: 'use GET or POST /faults' });
    let body = '';
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > 4096) return send(413, { error: 'fault spec longer than 4096 bytes', fix: FIX });
      body += (chunk as Buffer).toString('utf8');
    }
    try {
      const faults = await this.injector.apply(parseFaultSpec(body));
      send(200, { faults, spec: formatFaults(faults) });
    } catch (e) {
      if (e instanceof InputError) return send(400, { error: e.problems[0]?.message ?? e.message, fix: e.problems[0]?.fix ?? FIX });
      send(500, { error: (e as Error).message, fix: 'see the lab process output' });
    }
  }
}
