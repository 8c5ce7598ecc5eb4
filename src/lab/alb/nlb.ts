import { createServer, type Server, type Socket } from 'node:net';
import { closeWithSockets, listenOnLoopback } from '../http.js';
import { responsiveTimeout } from '../../runnable-timeout.js';
import type { LabClock } from '../timing.js';
import type { DpTarget } from './dataplane.js';
import type { ProbeResult } from './healthcheck.js';

/**
 * The NLB's TCP data plane: one TCP server per listener on 127.0.0.1:<random port>. Each accepted connection is
 * forwarded (bytes both ways, half-close passed on) to a routable target of the listener's target group, picked as
 * the ALB picks (healthy targets round robin; fail open to unhealthy ones when none is healthy):
 *
 *  - no routable target (none registered, or only `initial`/draining ones in the routing table) → the client's
 *    connection is reset;
 *  - the target refuses or resets the connection → the client's connection is reset (an NLB passes the RST on);
 *  - the target address is gone (a blackhole) → after the connect timeout (`albConnectTimeoutSeconds`) → reset;
 *  - a target deregistered: open connections keep flowing through the deregistration delay; at its end they are
 *    reset when `deregistration_delay.connection_termination.enabled` is true, and left open otherwise (AWS's rule).
 *
 * Not emulated: TLS/UDP listeners, client IP preservation and proxy protocol (the target sees 127.0.0.1), idle
 * timeout (350 s on AWS), cross-zone and availability-zone DNS, flow-hash stickiness (picks are round robin).
 */

/** A connection to a target as the network routes it (a blackhole never answers; the caller times out). */
export type TargetConnection = { kind: 'socket'; socket: Socket } | { kind: 'refused' } | { kind: 'blackhole' };

export interface NlbHost {
  clock: LabClock;
  /** Opens a connection to a target's ip:port. */
  connect(ip: string, port: number): TargetConnection;
  /** The target group the listener forwards to (its default action), or undefined. */
  forwardTarget(listenerArn: string): string | undefined;
  pick(tgArn: string): DpTarget | undefined;
  /** Registers a connection to a target; returns the function that ends it. */
  track(tgArn: string, key: string, f: { abort(): void }): () => void;
  /** Counts one client connection's outcome for the load balancer. */
  count(lbArn: string, outcome: 'forwarded' | 'reset-no-target' | 'reset-refused' | 'reset-timeout'): void;
}

export class NlbListenerServer {
  address = '';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: NlbHost,
    private readonly lbArn: string,
    private readonly listenerArn: string,
  ) {
    this.server = createServer({ pauseOnConnect: true }, (client) => this.handle(client));
  }

  async listen(): Promise<void> {
    const port = await listenOnLoopback(this.server);
    this.address = `127.0.0.1:${port}`;
  }

  close(): Promise<void> {
    return closeWithSockets(this.server, this.sockets);
  }

  private keep(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  private handle(client: Socket): void {
    this.keep(client);
    client.on('error', () => undefined);
    const tgArn = this.host.forwardTarget(this.listenerArn);
    const t = tgArn ? this.host.pick(tgArn) : undefined;
    if (!tgArn || !t) {
      this.host.count(this.lbArn, 'reset-no-target');
      client.resetAndDestroy();
      return;
    }
    const clock = this.host.clock;
    const key = `${t.ip}:${t.port}`;
    let done = false;
    let upstream: Socket | undefined;
    let connectTimer: NodeJS.Timeout | undefined;
    const untrack = this.host.track(tgArn, key, { abort: () => reset() });
    const finish = (): void => {
      if (done) return;
      done = true;
      if (connectTimer) clearTimeout(connectTimer);
      untrack();
    };
    const reset = (outcome?: 'reset-refused' | 'reset-timeout'): void => {
      if (done) return;
      if (outcome) this.host.count(this.lbArn, outcome);
      finish();
      if (!client.destroyed) client.resetAndDestroy();
      if (upstream && !upstream.destroyed) upstream.resetAndDestroy();
    };
    connectTimer = setTimeout(() => reset('reset-timeout'), clock.ms(clock.timings.albConnectTimeoutSeconds));
    connectTimer.unref();
    const conn = this.host.connect(t.ip, t.port);
    if (conn.kind === 'blackhole') return; // a released pod IP: the SYN goes unanswered until the timeout
    if (conn.kind === 'refused') {
      reset('reset-refused');
      return;
    }
    const up = conn.socket;
    upstream = up;
    this.keep(up);
    let connected = false;
    up.once('connect', () => {
      connected = true;
      if (connectTimer) clearTimeout(connectTimer);
      this.host.count(this.lbArn, 'forwarded');
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
    up.on('error', () => reset(connected ? undefined : 'reset-refused'));
    client.on('error', () => reset());
    up.on('close', (hadError) => {
      if (hadError) reset();
      else if (!done) {
        finish();
        client.end();
      }
    });
    client.on('close', () => {
      if (!done) {
        finish();
        up.end();
      }
    });
  }
}

/**
 * One NLB TCP health check: a connection to the target that must be accepted within the timeout. Refused →
 * `Target.FailedHealthChecks`; no answer (a blackhole: the address is gone) → `Target.Timeout`.
 */
export function probeTcp(open: () => TargetConnection, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let sock: Socket | undefined;
    const finish = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      cancelTimeout();
      sock?.destroy();
      resolve(r);
    };
    const failed: ProbeResult = { ok: false, reason: 'Target.FailedHealthChecks', description: 'Health checks failed' };
    const cancelTimeout = responsiveTimeout(timeoutMs, () => finish({ ok: false, reason: 'Target.Timeout', description: 'Request timed out' }));
    const conn = open();
    if (conn.kind === 'blackhole') return;
    if (conn.kind === 'refused') {
      finish(failed);
      return;
    }
    sock = conn.socket;
    sock.once('connect', () => finish({ ok: true, code: 0 }));
    sock.once('error', () => finish(failed));
  });
}
