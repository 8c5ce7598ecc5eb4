import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { LabNetwork, POD_LISTEN_HOST } from '../../src/lab/network.js';
import { DEFAULT_TIMINGS, LabClock, type LabTimings } from '../../src/lab/timing.js';

/** Shared fixtures for the ALB / AWS API / LBC tests: tiny pod servers behind virtual 127.0.200.x addresses and a wired ALB. */

export function fastClock(overrides: Partial<LabTimings> = {}): LabClock {
  return new LabClock({ ...DEFAULT_TIMINGS, timeScale: 100, ...overrides });
}

export interface PodServer {
  /** The virtual pod address (what targets are registered with). */
  ip: string;
  port: number;
  /** Where the server really listens on 127.0.0.1. */
  realPort: number;
  server: Server;
  hits: number;
  /** The process is gone: the address refuses connections. */
  close(): Promise<void>;
  /** The pod is gone and its IP released: the address is a blackhole. */
  release(): void;
}

/**
 * A pod-like HTTP server: it listens on 127.0.0.1 (ephemeral port) and `network` leads `ip:port` to it, as the
 * kubelet does for a pod.
 */
export function podServer(network: LabNetwork, ip: string, handler?: (req: IncomingMessage, res: ServerResponse) => void, port = 8080): Promise<PodServer> {
  const h =
    handler ??
    ((req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok from ${ip} ${req.url ?? ''}`);
    });
  const owner = `test-pod-${ip}`;
  const ps: PodServer = {
    ip,
    port,
    realPort: 0,
    hits: 0,
    server: createServer((req, res) => {
      ps.hits++;
      h(req, res);
    }),
    close: () =>
      new Promise((resolve) => {
        network.unexpose(ip, port, ps.realPort);
        ps.server.close(() => resolve());
        ps.server.closeAllConnections();
      }),
    release: () => network.detach(ip, owner),
  };
  return new Promise((resolve, reject) => {
    ps.server.once('error', reject);
    ps.server.listen(0, POD_LISTEN_HOST, () => {
      ps.realPort = (ps.server.address() as AddressInfo).port;
      ps.server.unref();
      network.attach(ip, owner);
      const err = network.expose(ip, port, owner, ps.realPort);
      if (err) reject(err);
      else resolve(ps);
    });
  });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpGet(url: string, timeoutMs = 5000, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** An ALB with one port-80 listener forwarding `/*` to one ip target group (created in-process, as the LBC would). */
export async function albWithTargetGroup(alb: AlbCloud, opts: { name?: string; path?: string; matcher?: string; forward?: boolean } = {}): Promise<{ lbArn: string; tgArn: string; listenerArn: string }> {
  const account = awsAccount(alb);
  const name = opts.name ?? 'k8s-default-echo-0123456789';
  const lb = await account.elbv2('CreateLoadBalancer', { Name: name, Type: 'application' });
  const lbArn = lb.LoadBalancers![0]!.LoadBalancerArn!;
  const tg = await account.elbv2('CreateTargetGroup', {
    Name: name.replace(/.{4}$/, 'abcd'),
    Protocol: 'HTTP',
    Port: 8080,
    TargetType: 'ip',
    HealthCheckPath: opts.path ?? '/healthz',
    HealthCheckIntervalSeconds: 15,
    HealthCheckTimeoutSeconds: 5,
    HealthyThresholdCount: 2,
    UnhealthyThresholdCount: 2,
    Matcher: { HttpCode: opts.matcher ?? '200' },
  });
  const tgArn = tg.TargetGroups![0]!.TargetGroupArn!;
  const listener = await account.elbv2('CreateListener', {
    LoadBalancerArn: lbArn,
    Port: 80,
    Protocol: 'HTTP',
    DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain' } }],
  });
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  if (opts.forward !== false) {
    await account.elbv2('CreateRule', {
      ListenerArn: listenerArn,
      Priority: 1,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/*'] } }],
      Actions: [{ Type: 'forward', TargetGroupArn: tgArn }],
    });
  }
  return { lbArn, tgArn, listenerArn };
}
