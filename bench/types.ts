export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The goal in words, e.g. ">= 5000" or "< 200": for people and dashboards, never asserted. */
  target: string;
}

/** Prints a suite's results as the last stdout line, the contract with bench/run.ts. */
export function report(results: BenchResult[]): void {
  process.stdout.write(`\n${JSON.stringify(results)}\n`);
}

/** Peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

/** The median (the lower middle for an even count); NaN for no values. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number);
}
