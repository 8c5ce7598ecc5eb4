import { request } from 'node:http';

/**
 * The lab's load generator: a steady request loop against one URL (like the seed article's curl loop),
 * recording every request. Bounded in count and time; loopback targets only.
 */

export interface TrafficOptions {
  url: string;
  /** Requests started per second (each on a new connection, as a browser or curl loop would). */
  ratePerSecond: number;
  /** Hard bounds: the loop stops at whichever comes first. */
  maxRequests: number;
  maxDurationMs: number;
  /** Per-request timeout; a request that times out is recorded with status 0 and error "timeout". */
  timeoutMs: number;
  /** The Host header (an ALB rule's host); default the URL's. */
  host?: string;
}

export interface RequestRecord {
  /** Start time, ms since the epoch. */
  at: number;
  /** HTTP status, or 0 when no response came (connection refused/reset, timeout). */
  status: number;
  latencyMs: number;
  /** The image that answered (header x-lab-image), when the response names one. */
  version?: string;
  error?: string;
}

export interface TrafficSummary {
  requests: number;
  responses: Record<string, number>;
  non2xx: number;
  /** Longest span from the first to the last failed request of a run of failures with no success between. */
  longestErrorWindowSeconds: number;
  firstErrorAt?: number;
  versions: Record<string, number>;
}

export class TrafficGenerator {
  readonly records: RequestRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private inFlight = new Set<Promise<void>>();
  private readonly target: URL;

  constructor(private readonly options: TrafficOptions) {
    this.target = new URL(options.url);
    if (!/^(127\.|localhost$|\[::1\]$)/.test(this.target.hostname)) {
      throw new Error(`the lab's traffic generator only targets loopback addresses, not ${this.target.hostname}`);
    }
  }

  start(): void {
    if (this.timer) return;
    const startedAt = Date.now();
    const intervalMs = 1000 / this.options.ratePerSecond;
    let due = startedAt;
    const tick = (): void => {
      const now = Date.now();
      if (this.started >= this.options.maxRequests || now - startedAt >= this.options.maxDurationMs) {
        this.halt();
        return;
      }
      // Catch up when the event loop was busy, so the rate holds on average.
      while (due <= now && this.started < this.options.maxRequests) {
        this.fire();
        due += intervalMs;
      }
      this.timer = setTimeout(tick, Math.max(1, due - Date.now()));
    };
    tick();
  }

  private halt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.started++;
    const p = this.one().finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private one(): Promise<void> {
    const at = Date.now();
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (rec: Omit<RequestRecord, 'at' | 'latencyMs'>): void => {
        if (done) return;
        done = true;
        this.records.push({ at, latencyMs: Date.now() - at, ...rec });
        resolve();
      };
      const req = request(this.target, { method: 'GET', agent: false, timeout: this.options.timeoutMs, ...(this.options.host ? { headers: { host: this.options.host } } : {}) }, (res) => {
        const version = res.headers['x-lab-image'];
        res.resume();
        res.on('end', () => finish({ status: res.statusCode ?? 0, ...(typeof version === 'string' ? { version } : {}) }));
        res.on('error', (e) => finish({ status: 0, error: e.message }));
      });
      req.on('timeout', () => {
        req.destroy(new Error('timeout'));
      });
      req.on('error', (e: NodeJS.ErrnoException) => finish({ status: 0, error: e.code ?? e.message }));
      req.end();
    });
  }

  /** Stops starting requests and waits for those in flight. */
  async stop(): Promise<TrafficSummary> {
    this.halt();
    await Promise.all([...this.inFlight]);
    return summarize(this.records);
  }

  /** Resolves when the loop has ended by its own bounds and every request has finished. */
  async finished(): Promise<TrafficSummary> {
    while (this.timer || this.inFlight.size > 0) await new Promise((r) => setTimeout(r, 20));
    return summarize(this.records);
  }
}

export function summarize(records: RequestRecord[]): TrafficSummary {
  const sorted = [...records].sort((a, b) => a.at - b.at);
  const responses: Record<string, number> = {};
  const versions: Record<string, number> = {};
  let non2xx = 0;
  let longest = 0;
  let windowStart: number | undefined;
  let firstErrorAt: number | undefined;
  for (const r of sorted) {
    const key = r.status === 0 ? (r.error === 'timeout' ? 'timeout' : 'connection-error') : String(r.status);
    responses[key] = (responses[key] ?? 0) + 1;
    if (r.version) versions[r.version] = (versions[r.version] ?? 0) + 1;
    const ok = r.status >= 200 && r.status < 300;
    if (!ok) {
      non2xx++;
      firstErrorAt ??= r.at;
      windowStart ??= r.at;
      longest = Math.max(longest, (r.at + r.latencyMs - windowStart) / 1000);
    } else {
      windowStart = undefined;
    }
  }
  return {
    requests: records.length,
    responses,
    non2xx,
    longestErrorWindowSeconds: Math.round(longest * 1000) / 1000,
    ...(firstErrorAt !== undefined ? { firstErrorAt } : {}),
    versions,
  };
}
