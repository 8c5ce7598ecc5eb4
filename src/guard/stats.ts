/**
 * The statistics of judging a release against its baseline, as pure functions: an error count is a binomial draw,
 * so a rate measured from few requests is only known within a bound, and "the release's rate is above the
 * baseline's" is a one-sided test, not a comparison of two fractions.
 *
 * - `upperBound(errors, n, confidence)`: the exact (Clopper–Pearson) one-sided upper confidence bound of a rate.
 * - `upperTail(k, n, p)`: P(X ≥ k) for X ~ Binomial(n, p), the p-value of seeing k or more errors at rate p.
 */

/** ln Γ(x) for x > 0 (Lanczos, g = 7; about 15 significant digits). */
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function lnPmf(k: number, n: number, p: number): number {
  if (p <= 0) return k === 0 ? 0 : Number.NEGATIVE_INFINITY;
  if (p >= 1) return k === n ? 0 : Number.NEGATIVE_INFINITY;
  return lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/** Sum of pmf over k = from, from+step, … while inside [0, n], stopping once the terms no longer matter (they shrink away from the mode). */
function sumFrom(from: number, step: 1 | -1, n: number, p: number): number {
  let sum = 0;
  for (let k = from; k >= 0 && k <= n; k += step) {
    const term = Math.exp(lnPmf(k, n, p));
    sum += term;
    const pastMode = step === 1 ? k > n * p : k < n * p;
    if (pastMode && term < sum * 1e-17) break;
  }
  return sum;
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
export function upperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // Sum the side of k away from the mode (few terms), the other through the complement.
  return k > n * p ? Math.min(1, sumFrom(k, 1, n, p)) : Math.max(0, 1 - sumFrom(k - 1, -1, n, p));
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function lowerTail(k: number, n: number, p: number): number {
  return 1 - upperTail(k + 1, n, p);
}

/**
 * The one-sided upper confidence bound of a rate seen as `errors` in `n` (Clopper–Pearson): the largest rate at
 * which seeing `errors` or fewer still has probability ≥ 1 − confidence. 0 of 100 at 95 % gives 2.95 %; no request gives 1.
 */
export function upperBound(errors: number, n: number, confidence: number): number {
  if (n <= 0) return 1;
  if (errors >= n) return 1;
  const alpha = 1 - confidence;
  let lo = errors / n;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (lowerTail(errors, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The one-sided lower confidence bound (Clopper–Pearson): 0 when nothing failed. */
export function lowerBound(errors: number, n: number, confidence: number): number {
  if (n <= 0 || errors <= 0) return 0;
  return 1 - upperBound(n - errors, n, confidence);
}
