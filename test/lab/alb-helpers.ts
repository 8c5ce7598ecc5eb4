import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { DEFAULT_TIMINGS, LabClock, type LabTimings } from '../../src/lab/timing.js';

/** Shared fixtures for the ALB / AWS API / LBC tests: tiny pod servers on 127.0.200.x and a wired ALB. */

export function fastClock(overrides: Partial<LabTimings> = {}): LabClock {
  return new LabClock({ ...DEFAULT_TIMINGS, timeScale: 100, ...overrides });
}

export interface PodServer {
  ip: string;
  port: number;
  server: Server;
  hits: number;
  close(): Promise<void>;
}

/** A pod-like HTTP server on its own loopback IP. */
export function podServer(ip: string, handler?: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<PodServer> {
  const h =
    handler ??
    ((req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok from ${ip} ${req.url ?? ''}`);
    });
  const ps: PodServer = {
    ip,
    port: 0,
    hits: 0,
    server: createServer((req, res) => {
      ps.hits++;
      h(req, res);
    }),
    close: () =>
      new Promise((resolve) => {
        ps.server.close(() => resolve());
        ps.server.closeAllConnections();
      }),
  };
  return new Promise((resolve, reject) => {
    ps.server.once('error', reject);
    ps.server.listen(port, ip, () => {
      ps.port = (ps.server.address() as AddressInfo).port;
      ps.server.unref();
      resolve(ps);
    });
  });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpGet(url: string, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
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
