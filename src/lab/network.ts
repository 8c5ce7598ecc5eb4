/**
 * The lab's pod network. Pod IPs are virtual addresses in 127.0.0.0/8 that nothing binds: each container port
 * of a running pod is a real listener on 127.0.0.1 with an ephemeral port, and this map says where a connection
 * to (pod IP, port) really goes. Only 127.0.0.1 is used, so the lab needs no root, no sysctl and no address
 * aliases, and runs where only 127.0.0.1 exists on loopback (macOS).
 *
 * What a connection to a pod address meets, as in a VPC:
 *  - the address belongs to no pod (never assigned, or released) → a blackhole: SYNs go unanswered;
 *  - the address belongs to a pod but nothing listens on the port (not started yet, stopped, exited) → refused;
 *  - otherwise → the pod's listener.
 */
import { type Socket, connect } from 'node:net';

/** The only host the lab's pod listeners bind. */
export const POD_LISTEN_HOST = '127.0.0.1';

export type PodRoute = { kind: 'listener'; host: string; port: number } | { kind: 'refused' } | { kind: 'blackhole' };

/** What anything that talks to a pod needs: where (pod IP, port) leads right now. */
export interface PodNetwork {
  route(ip: string, port: number): PodRoute;
}

/** The kubelet's side: which pod owns an address, and which real listener serves each of its ports. */
export class LabNetwork implements PodNetwork {
  private readonly owners = new Map<string, string>();
  private readonly listeners = new Map<string, { owner: string; port: number }>();

  /** The address now belongs to `owner` (a pod uid). Throws if another pod still holds it. */
  attach(ip: string, owner: string): void {
    const current = this.owners.get(ip);
    if (current !== undefined && current !== owner) throw new Error(`pod IP ${ip} is still assigned to pod uid ${current}`);
    this.owners.set(ip, owner);
  }

  /** The pod gave the address back: its listeners are unreachable from now on (whatever still runs). */
  detach(ip: string, owner: string): void {
    if (this.owners.get(ip) !== owner) return;
    this.owners.delete(ip);
    for (const key of [...this.listeners.keys()]) if (key.startsWith(`${ip}:`)) this.listeners.delete(key);
  }

  /**
   * Makes `ip:port` lead to the real listener on POD_LISTEN_HOST:`realPort`. Fails as bind(2) would: EADDRINUSE
   * when the port is taken in the pod (two containers, one port), EADDRNOTAVAIL when the pod no longer owns the IP.
   */
  expose(ip: string, port: number, owner: string, realPort: number): NodeJS.ErrnoException | undefined {
    if (this.owners.get(ip) !== owner) return errno('EADDRNOTAVAIL', 'bind: cannot assign requested address');
    const key = `${ip}:${port}`;
    if (this.listeners.has(key)) return errno('EADDRINUSE', 'bind: address already in use');
    this.listeners.set(key, { owner, port: realPort });
    return undefined;
  }

  /** The listener on `realPort` closed: new connections to `ip:port` are refused (if it still leads there). */
  unexpose(ip: string, port: number, realPort: number): void {
    const key = `${ip}:${port}`;
    if (this.listeners.get(key)?.port === realPort) this.listeners.delete(key);
  }

  isLive(ip: string): boolean {
    return this.owners.has(ip);
  }

  route(ip: string, port: number): PodRoute {
    if (!this.owners.has(ip)) return { kind: 'blackhole' };
    const l = this.listeners.get(`${ip}:${port}`);
    return l ? { kind: 'listener', host: POD_LISTEN_HOST, port: l.port } : { kind: 'refused' };
  }
}

export type PodConnection = { kind: 'socket'; socket: Socket } | { kind: 'refused'; error: NodeJS.ErrnoException } | { kind: 'blackhole' };

/**
 * Opens a TCP connection to a pod's `ip:port` as the network routes it. The route is read and the connection
 * started in the same tick, so a listener closed afterwards (its port maybe reused) is never reached through a
 * stale route. `blackhole`: nothing will ever answer; the caller waits for its own connect timeout.
 */
export function connectToPod(network: PodNetwork, ip: string, port: number): PodConnection {
  const r = network.route(ip, port);
  if (r.kind === 'listener') return { kind: 'socket', socket: connect({ host: r.host, port: r.port }) };
  if (r.kind === 'refused') return { kind: 'refused', error: errno('ECONNREFUSED', `connect ECONNREFUSED ${ip}:${port}`) };
  return r;
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}
