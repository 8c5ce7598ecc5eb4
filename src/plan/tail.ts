/**
 * How much longer than one pod's typical time a batch of new pods takes: a batch ends with its slowest pod, the
 * maximum of N draws of each pod's random part. The AWS-side delays assumed here are the realistic lab's profile
 * (docs/lab-timings.md; test/lab/timing.test.ts keeps them equal to it). Pure and deterministic: the expected
 * maximum is integrated over the distribution on a grid, no sampling.
 */

/** A lognormal delay in seconds (half of the draws below `median`, 1 % above `p99`), clamped to [min, max]. */
export interface LognormalDelay {
  median: number;
  p99: number;
  min: number;
  max: number;
}

/** A pod's container starting: scheduling, image pull, process start. */
export const POD_START_SECONDS: LognormalDelay = { median: 3, p99: 15, min: 1, max: 30 };
/** A registration reaching one ALB node (its routing table and health checker). */
export const NODE_REGISTRATION_SECONDS: LognormalDelay = { median: 10, p99: 30, min: 3, max: 60 };
/** A deregistration reaching one ALB node (it stops routing new requests to the target). */
export const NODE_DEREGISTRATION_SECONDS: LognormalDelay = { median: 6, p99: 20, min: 2, max: 30 };
/** Load-balancer nodes checking each target on their own schedule (one per AZ; the estimate assumes two). */
export const ALB_NODES = 2;

const STEP = 0.25;
const Z99 = 2.3263478740408408;

/**
 * The last batch's `n` new pods, against one pod's mean time (E[one pod]): `slowestSeconds` = E[the slowest of n] −
 * E[one pod]; `nthSeconds(j)` = E[the j-th of n to be ready] − E[one pod] (order statistics of n draws). One pod's
 * random part is its start plus the later of the ALB nodes' registration and first check (at a uniform point of
 * `intervalSeconds`); without a target group (`intervalSeconds` undefined) only its start.
 */
export interface BatchSpread {
  slowestSeconds: number;
  nthSeconds(j: number): number;
  /**
   * The last of the batch's old targets leaving every ALB node, against one new pod's mean plus one target's mean
   * deregistration (the later node's), with `unavailable` old pods going as the batch starts and each other one
   * when a new pod is ready. With none going early: E[max of n (pod + deregistration)] − the two means, exact (which
   * new pod lets which old one go does not change the max); otherwise the last ready new pod's order statistic plus
   * the spread of its old pods' deregistrations (an approximation); −E[one pod] when all go as the batch starts.
   */
  lastDrainSeconds(unavailable: number): number;
}

export function batchSpread(n: number, intervalSeconds?: number): BatchSpread {
  if (n <= 1) return { slowestSeconds: 0, nthSeconds: () => 0, lastDrainSeconds: () => 0 };
  const pod = podDensity(intervalSeconds);
  const mean = meanOf(pod);
  const cdf = cdfOf(pod);
  const nth = (j: number): number => expectedOrderStatistic(cdf, Math.max(1, Math.min(j, n)), Math.max(1, n)) - mean;
  const dereg = laterNode(NODE_DEREGISTRATION_SECONDS);
  const deregMean = meanOf(dereg);
  const deregCdf = cdfOf(dereg);
  const lastDrainSeconds = (unavailable: number): number => {
    const paired = n - Math.max(0, unavailable);
    if (paired <= 0) return -mean;
    if (paired >= n) return expectedOrderStatistic(cdfOf(convolve(pod, dereg)), n, n) - mean - deregMean;
    const spread = paired > 1 ? expectedOrderStatistic(deregCdf, paired, paired) - deregMean : 0;
    return nth(paired) + spread;
  };
  return { slowestSeconds: nth(n), nthSeconds: nth, lastDrainSeconds };
}

/** The later of the ALB nodes' draws of a delay, as masses. */
function laterNode(d: LognormalDelay): Float64Array {
  return massFromCdf(cdfOf(massOf(lognormalCdf(d), d.max)).map((c) => c ** ALB_NODES));
}

/** One pod's random part as probability masses on a grid of STEP seconds. */
function podDensity(intervalSeconds: number | undefined): Float64Array {
  const start = massOf(lognormalCdf(POD_START_SECONDS), POD_START_SECONDS.max);
  if (intervalSeconds === undefined) return start;
  let node = massOf(lognormalCdf(NODE_REGISTRATION_SECONDS), NODE_REGISTRATION_SECONDS.max);
  if (intervalSeconds > 0) node = convolve(node, massOf((x) => Math.min(1, Math.max(0, x / intervalSeconds)), intervalSeconds));
  const nodeCdf = cdfOf(node);
  const later = massFromCdf(nodeCdf.map((c) => c ** ALB_NODES));
  return convolve(start, later);
}

/** The σ of the lognormal whose median and 99th percentile are given (0 when p99 is not above the median). */
export function lognormalSigma(median: number, p99: number): number {
  return p99 > median && median > 0 ? Math.log(p99 / median) / Z99 : 0;
}

function lognormalCdf(d: LognormalDelay): (x: number) => number {
  const sigma = lognormalSigma(d.median, d.p99);
  return (x) => (x < d.min ? 0 : x >= d.max ? 1 : normalCdf(Math.log(x / d.median) / sigma));
}

/** Masses on [0, upTo]: cell i holds P(x in ((i−1)·STEP, i·STEP]), cell 0 P(x ≤ 0). */
function massOf(cdf: (x: number) => number, upTo: number): Float64Array {
  const n = Math.ceil(upTo / STEP) + 1;
  const out = new Float64Array(n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const c = i === n - 1 ? 1 : cdf(i * STEP);
    out[i] = c - prev;
    prev = c;
  }
  return out;
}

function massFromCdf(cdf: Float64Array): Float64Array {
  const out = new Float64Array(cdf.length);
  let prev = 0;
  for (let i = 0; i < cdf.length; i++) {
    out[i] = cdf[i]! - prev;
    prev = cdf[i]!;
  }
  return out;
}

function cdfOf(mass: Float64Array): Float64Array {
  const out = new Float64Array(mass.length);
  let s = 0;
  for (let i = 0; i < mass.length; i++) out[i] = s += mass[i]!;
  return out;
}

function convolve(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length - 1);
  for (let i = 0; i < a.length; i++) {
    const ai = a[i]!;
    if (ai === 0) continue;
    for (let j = 0; j < b.length; j++) out[i + j]! += ai * b[j]!;
  }
  return out;
}

function meanOf(mass: Float64Array): number {
  let m = 0;
  for (let i = 0; i < mass.length; i++) m += mass[i]! * i * STEP;
  return m;
}

/** E[the j-th smallest of n draws] = Σ P(X(j) > x) over the grid, P(X(j) ≤ x) = Σ_{i≥j} C(n,i) F^i (1−F)^(n−i). */
function expectedOrderStatistic(cdf: Float64Array, j: number, n: number): number {
  const binom: number[] = [1];
  for (let i = 1; i <= n; i++) binom.push((binom[i - 1]! * (n - i + 1)) / i);
  let e = 0;
  for (let x = 0; x < cdf.length - 1; x++) {
    const f = cdf[x]!;
    let below = 0;
    for (let i = j; i <= n; i++) below += binom[i]! * f ** i * (1 - f) ** (n - i);
    e += (1 - Math.min(1, below)) * STEP;
  }
  return e;
}

/** Φ(z), via erf (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}
