/**
 * The fault campaign: the 2048 safe rollout (`deploy --tune auto`) under realistic timings with traffic, once per
 * fault and once with all of them, each injected when the update starts (the LBC restart a few world seconds into
 * it). Per case: requests that were not 2xx (target 0), and whether the deploy completed — at once, or after the
 * faults were cleared and it was run again (a re-run after any interruption must complete). One JSON line per case
 * on stderr. Bounded: eight cases, one lab each, one after the other; BENCH_FAULT_SEEDS=N (default 1, at most 5) runs
 * each case on N lab seeds (the first is the case's own seed, 100 + its index; the k-th adds 8·k).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runScenarioInLab } from '../../src/lab/experiment.js';
import { parseFaultSpec } from '../../src/lab/faults.js';
import type { Lab } from '../../src/lab/index.js';
import type { BenchResult } from '../types.js';
import { peakRssMb, report } from '../types.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

interface FaultCase {
  name: string;
  spec: string;
  /** Applied this many world seconds after the update starts (0: with it). */
  afterWorldSeconds?: number;
}

const ALL_CASES: FaultCase[] = [
  { name: 'elbv2-throttle', spec: 'elbv2-throttle=30%' },
  { name: 'kube-5xx', spec: 'kube-5xx=10%' },
  { name: 'watch-drop', spec: 'watch-drop=30s' },
  { name: 'elbv2-5xx', spec: 'elbv2-5xx=20%' },
  { name: 'webhook-down', spec: 'webhook=down' },
  { name: 'lbc-restart', spec: 'lbc=restart', afterWorldSeconds: 40 },
  { name: 'node-loss', spec: 'node-loss=1', afterWorldSeconds: 20 },
  { name: 'all', spec: 'elbv2-throttle=30%,elbv2-5xx=20%,kube-5xx=10%,watch-drop=30s,webhook=down,lbc=restart,node-loss=1', afterWorldSeconds: 40 },
];
/** BENCH_FAULTS=webhook-down,all: only those cases (each keeps its seed). */
const CASES = process.env.BENCH_FAULTS ? ALL_CASES.filter((c) => process.env.BENCH_FAULTS!.split(',').includes(c.name)) : ALL_CASES;
const SEEDS_PER_CASE = Math.max(1, Math.min(5, Number(process.env.BENCH_FAULT_SEEDS ?? 1)));

/** The 2048 Deployment has finished rolling (updated = ready = available = total = spec.replicas). */
async function settled(lab: Lab, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = lab.store.get('Deployment', 'game-2048', 'deployment-2048');
    const st = (d?.status ?? {}) as Record<string, unknown>;
    const want = Number((d?.spec as Record<string, unknown> | undefined)?.replicas ?? 1);
    const done = d !== undefined && st.observedGeneration === d.metadata.generation && ['updatedReplicas', 'readyReplicas', 'availableReplicas', 'replicas'].every((k) => st[k] === want);
    if (done) return;
    if (Date.now() > deadline) throw new Error(`deployment-2048 not settled after ${timeoutMs / 1000}s: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One case on one lab seed; one JSON line on stderr. */
async function runCase(c: FaultCase, seed: number): Promise<{ requests: number; non2xx: number; atOnce: boolean } | undefined> {
  const line: Record<string, unknown> = { fault: c.name, spec: c.spec, seed };
  try {
    const s = await runScenarioInLab('safe', {
      examplesDir: join(root, 'examples', '2048'),
      profile: 'realistic',
      seed,
      ratePerSecond: 30,
      minRequests: 300,
      rolloutTimeoutSeconds: 120,
      ...(process.env.BENCH_TIME_SCALE ? { timings: { timeScale: Number(process.env.BENCH_TIME_SCALE) } } : {}),
      duringUpdate: async (lab: Lab) => {
        if (c.afterWorldSeconds) await lab.clock.sleep(c.afterWorldSeconds);
        await lab.setFaults(parseFaultSpec(c.spec));
      },
      afterFailure: async (lab: Lab) => {
        await lab.setFaults(parseFaultSpec('clear'));
        // As the failed deploy's message says: wait for the Deployment (its rollback) to settle, then re-run.
        await settled(lab, 120_000);
      },
    });
    Object.assign(line, { requests: s.requests, non2xx: s.non2xx, responses: s.responses, completed: s.world.firstAttemptError ? 'after a re-run' : 'at once', firstAttemptError: s.world.firstAttemptError?.slice(0, 600) });
    return { requests: s.requests, non2xx: s.non2xx, atOnce: !s.world.firstAttemptError };
  } catch (e) {
    line.failed = (e as Error).message.slice(0, 2000);
    return undefined;
  } finally {
    process.stderr.write(`${JSON.stringify(line)}\n`);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const results: BenchResult[] = [];
  let totalErrors = 0;
  for (const c of CASES) {
    const runs: Array<{ requests: number; non2xx: number; atOnce: boolean } | undefined> = [];
    for (let k = 0; k < SEEDS_PER_CASE; k++) runs.push(await runCase(c, 100 + ALL_CASES.indexOf(c) + ALL_CASES.length * k));
    const done = runs.filter((r) => r !== undefined);
    const non2xx = done.reduce((a, r) => a + r.non2xx, 0);
    const requests = done.reduce((a, r) => a + r.requests, 0);
    // A lost node takes requests with it (in flight, and routed to it until its health checks fail): not the rollout's.
    const lossy = c.spec.includes('node-loss');
    if (!lossy) totalErrors += non2xx;
    const over = SEEDS_PER_CASE > 1 ? ` (${SEEDS_PER_CASE} seeds, ${requests} requests)` : '';
    results.push({ name: `faults: ${c.name}: non-2xx${over}`, value: non2xx, unit: 'requests', target: lossy ? 'only 502/504 to the lost node until it is unhealthy' : '0' });
    results.push({ name: `faults: ${c.name}: deploys completed at once`, value: done.filter((r) => r.atOnce).length, unit: 'runs', target: `${SEEDS_PER_CASE} (fewer: failed with a message, and the re-run completed)` });
    results.push({ name: `faults: ${c.name}: deploys completed (also after a re-run)`, value: done.length, unit: 'runs', target: String(SEEDS_PER_CASE) });
  }
  results.push({ name: 'faults: non-2xx over all cases without node-loss', value: totalErrors, unit: 'requests', target: '0' });
  results.push({ name: 'faults: wall time', value: Math.round((performance.now() - started) / 100) / 10, unit: 's', target: `< ${640 * SEEDS_PER_CASE}` });
  results.push({ name: 'faults: peak RSS', value: peakRssMb(), unit: 'MB', target: '< 1000' });
  report(results);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
