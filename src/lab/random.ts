/**
 * The lab's one source of randomness: a seeded PRNG (mulberry32), passed explicitly. Each consumer takes its own
 * stream with `fork(label)`, derived from the seed and the label only, so that adding a consumer (or a consumer
 * drawing more numbers) does not shift what the others draw. Nothing in src/lab uses the unseeded global generator.
 */
import { lognormalSigma } from '../plan/tail.js';

/** FNV-1a, 32 bit, over the UTF-8 bytes (also Kubernetes' pod-template-hash). */
export function fnv32a(data: string): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(data, 'utf8');
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A small deterministic PRNG (mulberry32): a function returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A lognormal delay: half of the draws below `median`, 1 % above `p99`; clamped to [min, max]. */
export interface DelayDistribution {
  median: number;
  p99: number;
  min?: number;
  max?: number;
}

/** A delay in simulated seconds: a constant, or a distribution drawn from on every use. */
export type Delay = number | DelayDistribution;


export class LabRandom {
  private readonly next: () => number;

  constructor(
    readonly seed: number,
    readonly label = '',
  ) {
    this.next = seededRandom(fnv32a(`${seed >>> 0}/${label}`));
  }

  /** An independent stream for one consumer (same seed + label → same numbers). */
  fork(label: string): LabRandom {
    return new LabRandom(this.seed, this.label ? `${this.label}/${label}` : label);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /** A float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), Number.EPSILON);
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A draw of a delay: a constant is returned as is (and draws nothing, so the fast profile stays deterministic). */
  delay(d: Delay): number {
    if (typeof d === 'number') return d;
    const sigma = lognormalSigma(d.median, d.p99);
    const v = d.median * Math.exp(sigma * this.normal());
    return Math.min(d.max ?? Number.POSITIVE_INFINITY, Math.max(d.min ?? 0, v));
  }

  /** `bytes` random bytes as lower-case hex (IDs: ARNs, container IDs; never keys or certificates). */
  hex(bytes: number): string {
    let s = '';
    for (let i = 0; i < bytes; i++) s += this.int(256).toString(16).padStart(2, '0');
    return s;
  }

  /** An RFC 4122 version-4 UUID from this stream (object uids). */
  uuid(): string {
    const h = this.hex(16).split('');
    h[12] = '4';
    h[16] = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
    const s = h.join('');
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  }

  /** A function view, for APIs that take `() => number`. */
  fn(): () => number {
    return () => this.next();
  }
}

/** The typical value of a delay (its median, or the constant): for estimates and descriptions. */
export function delayMedian(d: Delay): number {
  return typeof d === 'number' ? d : d.median;
}

/** The 99th percentile of a delay (the constant itself for a constant). */
export function delayP99(d: Delay): number {
  return typeof d === 'number' ? d : Math.min(d.p99, d.max ?? Number.POSITIVE_INFINITY);
}
