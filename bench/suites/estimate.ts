/**
 * plan's rollout-time estimate against the realistic lab: for several manifests (replicas, surge/unavailable mixes,
 * the user's preStop), each rolled with `deploy --tune auto` under `--timings realistic` on a few seeds, the
 * estimate vs the deploy's measured `workloads` phase (world seconds: the rollout until every old target has
 * drained). Target: within ±15 % of the mean over the seeds, per manifest. Light traffic only (5 req/s real), so
 * that the machine's load distorts the compressed timings as little as possible. One JSON line per run on stderr.
 *
 * BENCH_ESTIMATE_SEEDS (default 1,2), BENCH_ESTIMATE_CASES (how many of the manifests, default all 4) and
 * BENCH_TIME_SCALE (default the lab's 20; lower on a loaded machine).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runScenarioInLab } from '../../src/lab/experiment.js';
import type { BenchResult } from '../types.js';
import { peakRssMb, report } from '../types.js';
import { editFor, type CampaignCase } from './campaign.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

export const ESTIMATE_CASES: Array<Omit<CampaignCase, 'seed'>> = [
  { replicas: 3, maxSurge: '1', maxUnavailable: '0', preStopSeconds: null, graceSeconds: null },
  { replicas: 8, maxSurge: '25%', maxUnavailable: '25%', preStopSeconds: 20, graceSeconds: 60 },
  { replicas: 6, maxSurge: '0', maxUnavailable: '1', preStopSeconds: 45, graceSeconds: 90 },
  { replicas: 12, maxSurge: '100%', maxUnavailable: '0', preStopSeconds: 5, graceSeconds: 30 },
];

async function main(): Promise<void> {
  const seeds = (process.env.BENCH_ESTIMATE_SEEDS ?? '1,2').split(',').map(Number);
  const cases = ESTIMATE_CASES.slice(0, Number(process.env.BENCH_ESTIMATE_CASES ?? ESTIMATE_CASES.length));
  const started = performance.now();
  const results: BenchResult[] = [];
  let worstMean = 0;
  let worstRun = 0;
  for (const [i, c] of cases.entries()) {
    const measured: number[] = [];
    let estimate = 0;
    for (const seed of seeds) {
      const line: Record<string, unknown> = { case: c, seed };
      try {
        const s = await runScenarioInLab('safe', {
          examplesDir: join(root, 'examples', '2048'),
          profile: 'realistic',
          seed: 200 + seed,
          edit: editFor({ ...c, seed }),
          ...(process.env.BENCH_TIME_SCALE ? { timings: { timeScale: Number(process.env.BENCH_TIME_SCALE) } } : {}),
          ratePerSecond: 5,
          minRequests: 20,
          rolloutTimeoutSeconds: 240,
        });
        estimate = s.world.planEstimateSeconds ?? 0;
        const m = s.world.workloadsPhaseSeconds ?? 0;
        measured.push(m);
        worstRun = Math.max(worstRun, Math.abs(Math.round((estimate / m - 1) * 100)));
        Object.assign(line, { planEstimateSeconds: estimate, workloadsPhaseSeconds: m, non2xx: s.non2xx, responses: s.responses });
      } catch (e) {
        line.failed = (e as Error).message.slice(0, 1000);
      }
      process.stderr.write(`${JSON.stringify(line)}\n`);
    }
    if (measured.length === 0) continue;
    const mean = measured.reduce((a, b) => a + b, 0) / measured.length;
    const off = Math.round((estimate / mean - 1) * 100);
    if (Math.abs(off) > Math.abs(worstMean)) worstMean = off;
    results.push({ name: `estimate: case ${i + 1} (${c.replicas} replicas, surge ${c.maxSurge}/unavailable ${c.maxUnavailable}): plan vs measured mean`, value: off, unit: '%', target: 'within ±15' });
  }
  results.push({ name: 'estimate: worst case, plan vs the mean over seeds', value: worstMean, unit: '%', target: 'within ±15' });
  results.push({ name: 'estimate: worst single run, |plan vs measured|', value: worstRun, unit: '%', target: 'for reference' });
  results.push({ name: 'estimate: wall time', value: Math.round((performance.now() - started) / 100) / 10, unit: 's', target: '< 600' });
  results.push({ name: 'estimate: peak RSS', value: peakRssMb(), unit: 'MB', target: '< 1000' });
  report(results);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
