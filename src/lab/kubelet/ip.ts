/**
 * Pod IPs: virtual addresses in 127.0.0.0/8 that nothing binds (see ../network.ts), so that nothing addressed to
 * a pod can ever leave the machine. Addresses are handed out round-robin through the range and never while in
 * use. A released address is reused once the range has gone by, or — with `cooldownMs`, like the VPC CNI's IP
 * cooldown — once it has been free that long (oldest released first).
 */

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
 * Pod IPs for a real API server, which rejects loopback addresses in EndpointSlices: 198.18.0.0/15 (RFC 2544,
 * reserved for benchmarking, never routed on the internet). Virtual as well: only the lab network leads there.
 */
export function realTierIpRange(): Required<IpRange> {
  return { start: '198.18.0.2', end: '198.18.255.254' };
}

/** Which of the two ranges a pod IP may come from holds this address ('' for neither). */
function virtualRange(n: number): '' | 'loopback' | 'benchmark' {
  if (n >>> 24 === 127) return 'loopback';
  if (n >>> 17 === ((198 << 7) | (18 >> 1))) return 'benchmark';
  return '';
}

/** The default range, 127.10.0.2 – 127.10.255.254 (the same in every lab: the addresses are never bound). */
export function defaultIpRange(): Required<IpRange> {
  return { start: '127.10.0.2', end: '127.10.255.254' };
}

export interface IpAllocatorOptions {
  /** Reuse a released address after it has been free this long (ms of `now`); default: only after the range went by. */
  cooldownMs?: number;
  now?: () => number;
}

export class IpAllocator {
  private readonly start: number;
  private readonly end: number;
  private next: number;
  private readonly inUse = new Set<string>();
  /** Released address → when (only with a cooldown; Map order: oldest first). */
  private readonly released = new Map<string, number>();
  private readonly cooldownMs: number | undefined;
  private readonly now: () => number;

  constructor(range: IpRange = defaultIpRange(), options: IpAllocatorOptions = {}) {
    this.start = ipToInt(range.start);
    const end = range.end ? ipToInt(range.end) : (this.start | 0xffff) - 1;
    if (!virtualRange(this.start) || virtualRange(this.start) !== virtualRange(end) || end < this.start) {
      throw new Error(`pod IP range ${range.start}-${range.end ?? ''} must lie in 127.0.0.0/8 or 198.18.0.0/15 and end after it starts`);
    }
    this.end = end;
    this.next = this.start;
    this.cooldownMs = options.cooldownMs;
    this.now = options.now ?? Date.now;
  }

  /** Picks a free address. */
  allocate(): string {
    if (this.cooldownMs !== undefined) {
      const [oldest] = this.released;
      if (oldest && this.now() - oldest[1] >= this.cooldownMs) {
        this.released.delete(oldest[0]);
        this.inUse.add(oldest[0]);
        return oldest[0];
      }
    }
    const size = this.end - this.start + 1;
    for (let i = 0; i < size; i++) {
      const candidate = intToIp(this.next);
      this.next = this.next >= this.end ? this.start : this.next + 1;
      const last = candidate.split('.')[3];
      if (last === '0' || last === '255' || this.inUse.has(candidate)) continue;
      const releasedAt = this.released.get(candidate);
      if (releasedAt !== undefined && this.now() - releasedAt < (this.cooldownMs ?? 0)) continue;
      this.released.delete(candidate);
      this.inUse.add(candidate);
      return candidate;
    }
    const cooling = this.released.size > 0 ? `, ${this.released.size} in cooldown` : '';
    throw new Error(`no free pod IP in ${intToIp(this.start)}-${intToIp(this.end)}: ${this.inUse.size} in use${cooling}; delete pods or widen podIPRange`);
  }

  release(ip: string): void {
    if (!this.inUse.delete(ip)) return;
    if (this.cooldownMs !== undefined) this.released.set(ip, this.now());
  }

  /** Whether the address belongs to a pod right now. */
  has(ip: string): boolean {
    return this.inUse.has(ip);
  }

  get used(): number {
    return this.inUse.size;
  }
}
