import { request, type ClientRequest } from 'node:http';
import { type PodNetwork, connectToPod } from '../network.js';
import { responsiveTimeout } from '../../runnable-timeout.js';

/** Target-group health check settings as ELBv2 holds them. */
export interface HealthCheckConfig {
  protocol: 'HTTP' | 'HTTPS' | 'TCP';
  /** 'traffic-port' or a port number as a string. */
  port: string;
  path: string;
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** `200`, `200,201`, `200-299` (ALB HTTP matcher syntax). */
  matcher: string;
  enabled: boolean;
}

/** What ELBv2 applies to a TCP target group (an NLB's) when CreateTargetGroup leaves a setting out. */
export const AWS_API_TCP_HEALTH_CHECK_DEFAULTS: HealthCheckConfig = {
  protocol: 'TCP',
  port: 'traffic-port',
  path: '/',
  intervalSeconds: 30,
  timeoutSeconds: 10,
  healthyThreshold: 5,
  unhealthyThreshold: 2,
  matcher: '200-399',
  enabled: true,
};

export const AWS_API_HEALTH_CHECK_DEFAULTS: HealthCheckConfig = {
  protocol: 'HTTP',
  port: 'traffic-port',
  path: '/',
  intervalSeconds: 30,
  timeoutSeconds: 5,
  healthyThreshold: 5,
  unhealthyThreshold: 2,
  matcher: '200',
  enabled: true,
};

/** Parses an HTTP matcher (codes up to `max`: 499 for an ALB, 599 for an NLB); throws with a ValidationError-style message. */
export function parseMatcher(matcher: string, max = 499): (code: number) => boolean {
  const parts = matcher.split(',').map((s) => s.trim());
  const tests: Array<(c: number) => boolean> = [];
  for (const p of parts) {
    const range = /^(\d{3})-(\d{3})$/.exec(p);
    if (range) {
      const lo = Number(range[1]);
      const hi = Number(range[2]);
      if (lo > hi || lo < 200 || hi > max) throw new Error(`Health check matcher range '${p}' must be within 200-${max}`);
      tests.push((c) => c >= lo && c <= hi);
    } else if (/^\d{3}$/.test(p)) {
      const v = Number(p);
      if (v < 200 || v > max) throw new Error(`Health check matcher code '${p}' must be within 200-${max}`);
      tests.push((c) => c === v);
    } else {
      throw new Error(`Health check matcher '${matcher}' is not valid; use codes like 200, 200,201 or 200-299`);
    }
  }
  return (c) => tests.some((t) => t(c));
}

export type ProbeResult =
  | { ok: true; code: number }
  | { ok: false; reason: 'Target.ResponseCodeMismatch' | 'Target.Timeout' | 'Target.FailedHealthChecks'; description: string; code?: number };

/**
 * One health check: a real HTTP GET to ip:port+path (through the lab network) with the ELB health checker's user
 * agent. An address no pod owns (pod gone) answers nothing: the check waits for the timeout.
 */
export function probeTarget(network: PodNetwork, ip: string, port: number, path: string, timeoutMs: number, matches: (code: number) => boolean): Promise<ProbeResult> {
  const timedOut: ProbeResult = { ok: false, reason: 'Target.Timeout', description: 'Request timed out' };
  return new Promise((resolve) => {
    let done = false;
    let req: ClientRequest | undefined;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      cancelTimeout();
      resolve(r);
    };
    const cancelTimeout = responsiveTimeout(timeoutMs, () => {
      req?.destroy();
      finish(timedOut);
    });
    const failed: ProbeResult = { ok: false, reason: 'Target.FailedHealthChecks', description: 'Health checks failed' };
    const conn = connectToPod(network, ip, port);
    if (conn.kind === 'blackhole') return;
    if (conn.kind === 'refused') {
      finish(failed);
      return;
    }
    req = request({
      host: ip,
      port,
      path,
      method: 'GET',
      createConnection: () => conn.socket,
      headers: { 'user-agent': 'ELB-HealthChecker/2.0', host: `${ip}:${port}`, connection: 'close' },
    });
    req.on('response', (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      if (matches(code)) finish({ ok: true, code });
      else finish({ ok: false, reason: 'Target.ResponseCodeMismatch', description: `Health checks failed with these codes: [${code}]`, code });
    });
    req.on('error', () => finish(failed));
    req.end();
  });
}
