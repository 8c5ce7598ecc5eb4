import { createServer, request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import { closeWithSockets, listenOnLoopback } from '../http.js';
import { type PodConnection, type PodNetwork, connectToPod } from '../network.js';
import type { LabClock } from '../timing.js';
import type { AlbMetrics } from './metrics.js';
import { TargetConnectionPool } from './target-pool.js';

/**
 * The ALB's HTTP data plane: one HTTP server per load balancer on 127.0.0.1:<random port>, standing for its
 * port-80 listener. It routes by the listener rules to a target group, picks a routable target (round robin,
 * or least outstanding requests), and proxies the request through the lab network — on a fresh connection, or with
 * `albKeepAlive` (the realistic profile) on a pooled keep-alive one (target-pool.ts):
 *
 *  - no healthy target and no unhealthy one to fail open to (none registered, or only `initial`/draining
 *    ones in the routing table) → 503 (the load balancer's own page);
 *  - target refuses (nothing listens on the pod's port) or resets the connection, or closes it with a request
 *    outstanding (also: closed an idle pooled connection the ALB was just reusing) → 502;
 *  - target address gone (no pod owns the IP: a blackhole) → waits `albConnectTimeoutSeconds`, then 504;
 *  - no response within the idle timeout → 504;
 *  - otherwise the target's response passes through, with `x-lab-target: ip:port` added.
 *
 * Every answer is counted into the CloudWatch metrics (ELB-originated vs target status codes).
 */

export interface DpTarget {
  ip: string;
  port: number;
  health: 'initial' | 'healthy' | 'unhealthy';
}

export type RouteDecision =
  | { kind: 'no-listener' }
  | { kind: 'fixed'; status: number; contentType: string; body: string; location?: string }
  | { kind: 'forward'; tgArn: string };

/** What the data plane needs from the ALB model. */
export interface DataPlaneHost {
  clock: LabClock;
  metrics: AlbMetrics;
  idleTimeoutSeconds: number;
  /** Where a target's ip:port leads. */
  network: PodNetwork;
  /** `listenerArn`: the listener this server stands for (an HTTPS one); absent: the load balancer's HTTP listener. */
  route(lbArn: string, host: string, path: string, method: string, listenerArn?: string, headers?: IncomingHttpHeaders): RouteDecision;
  pick(tgArn: string): DpTarget | undefined;
  /** Registers a request in flight to a target; returns the function that ends it. */
  track(tgArn: string, key: string, f: { abort(): void }): () => void;
}

const ELB_TEXT: Record<number, string> = {
  500: '500 Internal Server Error',
  502: '502 Bad Gateway',
  503: '503 Service Temporarily Unavailable',
  504: '504 Gateway Time-out',
};

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

/** The body AWS's load balancer sends with the errors it generates itself. */
export function elbErrorBody(status: number): string {
  const t = ELB_TEXT[status] ?? `${status}`;
  return `<html>\r\n<head><title>${t}</title></head>\r\n<body>\r\n<center><h1>${t}</h1></center>\r\n</body>\r\n</html>\r\n`;
}

/** An HTTPS listener's own server (see tls-listener.ts): its ARN and port, and the certificate for each SNI name. */
export interface TlsListener {
  arn: string;
  port: number;
  /** The certificate for a name the client asked for (SNI). */
  certificate(serverName: string): SecureContext;
  /** For a client that names no server: the listener's default certificate. */
  defaultCertificate: { key: string; cert: string };
}

export class DataPlaneServer {
  url = '';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pool: TargetConnectionPool | undefined;

  constructor(
    private readonly host: DataPlaneHost,
    private readonly lbArn: string,
    private readonly tls?: TlsListener,
  ) {
    this.pool = host.clock.timings.albKeepAlive ? new TargetConnectionPool(host.clock, host.network, () => host.idleTimeoutSeconds) : undefined;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    this.server = tls
      ? createHttpsServer({ SNICallback: (name, cb) => cb(null, tls.certificate(name)), ...tls.defaultCertificate }, handler)
      : createServer(handler);
    this.server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<void> {
    const port = await listenOnLoopback(this.server);
    this.url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  pooledConnections(): Record<string, number> {
    return this.pool?.counts() ?? {};
  }

  close(): Promise<void> {
    this.pool?.close();
    return closeWithSockets(this.server, this.sockets);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    const d = this.host.route(this.lbArn, hostHeader, path, req.method ?? 'GET', this.tls?.arn, req.headers);
    if (d.kind === 'no-listener') {
      req.socket.destroy();
      return;
    }
    if (d.kind === 'fixed') {
      req.resume();
      const headers: Record<string, string | number> = { server: 'awselb/2.0', 'content-type': d.contentType, 'content-length': Buffer.byteLength(d.body) };
      if (d.location) headers.location = d.location;
      res.writeHead(d.status, headers);
      res.end(d.body);
      this.host.metrics.record({ lbArn: this.lbArn, status: d.status, origin: 'fixed' });
      return;
    }
    const target = this.host.pick(d.tgArn);
    if (!target) {
      req.resume();
      this.elbError(res, 503);
      this.host.metrics.record({ lbArn: this.lbArn, tgArn: d.tgArn, status: 503, origin: 'elb' });
      return;
    }
    this.forward(req, res, url, d.tgArn, target);
  }

  /** The load balancer's own error page; `target` (ip:port) is named in `x-lab-target` when one was chosen. */
  private elbError(res: ServerResponse, status: number, target?: string): void {
    const body = elbErrorBody(status);
    res.writeHead(status, {
      server: 'awselb/2.0',
      'content-type': 'text/html',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
      ...(target ? { 'x-lab-target': target } : {}),
    });
    res.end(body);
  }

  private forward(req: IncomingMessage, res: ServerResponse, url: string, tgArn: string, t: DpTarget): void {
    const key = `${t.ip}:${t.port}`;
    const clock = this.host.clock;
    let finished = false;
    let preq: ClientRequest | undefined;
    const timers: NodeJS.Timeout[] = [];
    const timer = (simSeconds: number, fn: () => void): void => {
      const h = setTimeout(fn, clock.ms(simSeconds));
      h.unref();
      timers.push(h);
    };
    const end = (): void => {
      finished = true;
      untrack();
      for (const h of timers) clearTimeout(h);
    };
    const done = (status: number, origin: 'elb' | 'target'): void => {
      if (finished) return;
      end();
      this.host.metrics.record({ lbArn: this.lbArn, tgArn, status, origin });
    };
    const fail = (status: number): void => {
      if (finished) return;
      if (!res.headersSent) this.elbError(res, status, key);
      else res.destroy();
      done(status, 'elb');
      preq?.destroy();
    };
    const untrack = this.host.track(tgArn, key, { abort: () => fail(502) });
    res.on('close', () => {
      // The client went away before the answer was complete (AWS logs 460); nothing is counted.
      if (!finished) {
        end();
        preq?.destroy();
      }
    });

    const conn = this.pool ? this.pool.acquire(t.ip, t.port) : connectTarget(this.host.network, t);
    if (conn.kind === 'stale') {
      req.resume();
      fail(502);
      return;
    }
    if (conn.kind === 'blackhole') {
      // A released pod IP: SYNs go unanswered until the ALB's connect timeout.
      req.resume();
      timer(clock.timings.albConnectTimeoutSeconds, () => fail(504));
      return;
    }
    if (conn.kind === 'refused') {
      req.resume();
      fail(502);
      return;
    }

    const headers: IncomingHttpHeaders = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const client = req.socket.remoteAddress ?? '127.0.0.1';
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${String(headers['x-forwarded-for'])}, ${client}` : client;
    headers['x-forwarded-proto'] = this.tls ? 'https' : 'http';
    headers['x-forwarded-port'] = String(this.tls?.port ?? 80);
    headers['x-amzn-trace-id'] = `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${clock.stream('alb/trace-ids').hex(12)}`;
    headers.connection = this.pool ? 'keep-alive' : 'close';

    const socket = conn.socket;
    const pool = this.pool;
    const realPort = (conn as { realPort?: number }).realPort;
    preq = request({ host: t.ip, port: t.port, method: req.method, path: url, headers, createConnection: () => socket });
    preq.on('socket', (s) => {
      if ((s as Socket).connecting) {
        const h = setTimeout(() => fail(504), clock.ms(clock.timings.albConnectTimeoutSeconds));
        h.unref();
        timers.push(h);
        s.once('connect', () => clearTimeout(h));
      }
    });
    timer(this.host.idleTimeoutSeconds, () => fail(504));
    preq.on('response', (pres) => {
      if (finished) {
        pres.destroy();
        return;
      }
      const status = pres.statusCode ?? 502;
      const out: Record<string, string | string[] | number> = {};
      for (const [k, v] of Object.entries(pres.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) out[k] = v;
      out['x-lab-target'] = key;
      res.writeHead(status, out);
      pres.pipe(res);
      pres.on('end', () => done(status, 'target'));
      if (pool && realPort !== undefined) {
        // After the client side of node:http has let go of the socket (its 'close' follows the response's end).
        preq!.once('close', () => {
          const keep = pres.complete && !/\bclose\b/i.test(String(pres.headers.connection ?? '')) && !socket.destroyed;
          if (keep) pool.release(t.ip, t.port, socket, realPort);
          else socket.destroy();
        });
      }
      pres.on('close', () => {
        if (!pres.complete) fail(502); // the target closed the connection mid-response
      });
    });
    preq.on('error', () => fail(502));
    req.pipe(preq);
  }
}

/** The connection to one target for one request (the ALB opens a fresh one per request). */
export function connectTarget(network: PodNetwork, t: DpTarget): PodConnection {
  return connectToPod(network, t.ip, t.port);
}

