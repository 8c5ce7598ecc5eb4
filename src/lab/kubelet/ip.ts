/**
 * Pod IPs on loopback. Linux routes all of 127.0.0.0/8 to `lo`, so every pod gets its own address and a
 * stopped pod's address really refuses connections. Addresses are handed out round-robin through the range
 * (a released address is reused only after the whole range has gone by) and never while still in use.
 */
import { createServer } from 'node:net';

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`invalid IPv4 address "${ip}": expected four numbers 0-255, e.g. 127.0.1.2`);
  }
  return (((parts[0] as number) << 24) | ((parts[1] as number) << 16) | ((parts[2] as number) << 8) | (parts[3] as number)) >>> 0;
}

export function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface IpRange {
  start: string;
  end?: string;
}

/**
 * The default range: 127.<n>.0.2 – 127.<n>.255.254 with n from the process id, so that labs in parallel
 * processes (test runners) rarely pick the same addresses; a clash is detected by a test bind anyway.
 */
export function defaultIpRange(): Required<IpRange> {
  const n = 1 + (process.pid % 254);
  return { start: `127.${n}.0.2`, end: `127.${n}.255.254` };
}

export class IpAllocator {
  private readonly start: number;
  private readonly end: number;
  private next: number;
  private readonly inUse = new Set<string>();

  constructor(range: IpRange = defaultIpRange()) {
    this.start = ipToInt(range.start);
    const end = range.end ? ipToInt(range.end) : (this.start | 0xffff) - 1;
    if ((this.start >>> 24) !== 127 || (end >>> 24) !== 127 || end < this.start) {
      throw new Error(`pod IP range ${range.start}-${range.end ?? ''} must lie in 127.0.0.0/8 and end after it starts`);
    }
    this.end = end;
    this.next = this.start;
  }

  /** Picks a free address; with `ports`, also checks that nothing else (another process) is bound there. */
  async allocate(ports: number[] = []): Promise<string> {
    const size = this.end - this.start + 1;
    for (let i = 0; i < size; i++) {
      const candidate = intToIp(this.next);
      this.next = this.next >= this.end ? this.start : this.next + 1;
      const last = candidate.split('.')[3];
      if (last === '0' || last === '255' || this.inUse.has(candidate)) continue;
      this.inUse.add(candidate);
      if (await portsFree(candidate, ports)) return candidate;
      this.inUse.delete(candidate);
    }
    throw new Error(`no free pod IP in ${intToIp(this.start)}-${intToIp(this.end)}: ${this.inUse.size} in use; delete pods or widen podIPRange`);
  }

  release(ip: string): void {
    this.inUse.delete(ip);
  }

  /** Whether the address belongs to a pod right now (a released address is a blackhole, as in a VPC). */
  has(ip: string): boolean {
    return this.inUse.has(ip);
  }

  get used(): number {
    return this.inUse.size;
  }
}

async function portsFree(ip: string, ports: number[]): Promise<boolean> {
  for (const port of new Set(ports)) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
      s.listen({ port, host: ip, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}
