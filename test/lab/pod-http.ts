import { request } from 'node:http';
import { type PodNetwork, connectToPod } from '../../src/lab/network.js';

export type PodGetResult = { status: number; body: string; headers: Record<string, string | string[] | undefined> } | { error: string };

/**
 * A GET to a pod's (virtual) ip:port, routed by the lab network as the ALB's requests are: `{error: 'ECONNREFUSED'}`
 * when nothing listens there, `{error: 'blackhole'}` when no pod owns the address.
 */
export function podGet(network: PodNetwork, ip: string, port: number, path = '/'): Promise<PodGetResult> {
  const conn = connectToPod(network, ip, port);
  if (conn.kind === 'refused') return Promise.resolve({ error: conn.error.code ?? conn.error.message });
  if (conn.kind === 'blackhole') return Promise.resolve({ error: 'blackhole' });
  return new Promise((resolve) => {
    const req = request({ host: ip, port, path, createConnection: () => conn.socket, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end();
  });
}
