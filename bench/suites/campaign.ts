/**
 * The realistic campaign: N seeded rollouts of the 2048 app under `--timings realistic` with traffic through the ALB,
 * each case drawn from its seed — replicas 1–50, a maxSurge/maxUnavailable mix, the user's own preStop sleep (or
 * none) and grace period — rolled once with `alb-rollout deploy --tune auto` (safe: should serve no non-2xx) and
 * once naively on the same seed and manifests (plain apply of the naive example: should show errors). Every pod
 * answers user requests after a seeded lognormal latency (LONG_REQUESTS), so requests are in flight during drains.
 *
 * Bounded for a 2-core machine: N = BENCH_CAMPAIGN_N (default 6: seeds 1–6 draw 3 to 50 replicas) cases, run one after the other; every case's lab is
 * stopped before the next starts. Each case is printed to stderr as one JSON line (seed, draw, results) so that a
 * failing seed can be replayed: `BENCH_CAMPAIGN_SEEDS=7,9 npm run bench -- --only campaign`.
 *
 * The lab compresses time 10× (BENCH_TIME_SCALE; at 20× a shared machine's event-loop stalls already distorted the
 * timings): a readiness probe of 1 s is then 100 ms of real time, so on a saturated machine probes and checks
 * time out and the results say more about the machine than the product. Each case therefore reports the worst
 * event-loop delay it saw; read a case with a delay of seconds as "not measured".
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runScenarioInLab, type ScenarioResult } from '../../src/lab/experiment.js';
import { LabRandom } from '../../src/lab/random.js';
import type { BenchResult } from '../types.js';
import { peakRssMb, report } from '../types.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
/** BENCH_TIME_SCALE: a lower compression for a loaded machine (the timings survive event-loop stalls 20/scale × longer). */
const TIME_SCALE = process.env.BENCH_TIME_SCALE ? Number(process.env.BENCH_TIME_SCALE) : undefined;

export interface CampaignCase {
  seed: number;
  replicas: number;
  maxSurge: string;
  maxUnavailable: string;
  /** The user's own preStop sleep in seconds; null: none (the tuner adds one). */
  preStopSeconds: number | null;
  /** The user's terminationGracePeriodSeconds; null: unset (Kubernetes' 30). */
  graceSeconds: number | null;
}

const REPLICAS = [1, 2, 3, 5, 8, 13, 20, 35, 50];
const MIXES: Array<[string, string]> = [
  ['25%', '25%'],
  ['1', '0'],
  ['0', '1'],
  ['100%', '0'],
  ['50%', '50%'],
  ['2', '1'],
];
const PRESTOPS = [null, 5, 20, 45];
/** What every campaign pod does (LAB_BEHAVIOR): slow and long requests. */
export const LONG_REQUESTS = 'latency=0.5/4';
const GRACES = [null, 30, 60, 90];

function resolveCount(v: string, replicas: number, roundUp: boolean): number {
  if (!v.endsWith('%')) return Number(v);
  const x = (Number(v.slice(0, -1)) / 100) * replicas;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

export function drawCase(seed: number): CampaignCase {
  const r = new LabRandom(seed).fork('campaign');
  const replicas = REPLICAS[r.int(REPLICAS.length)]!;
  let [maxSurge, maxUnavailable] = MIXES[r.int(MIXES.length)]!;
  // A mix that may take every pod down at once (or that cannot progress) is refused by the API server or the lint
  // rule `max-unavailable`; the campaign is about timing, so such draws fall back to surge-only.
  const unavailable = resolveCount(maxUnavailable, replicas, false);
  const surge = resolveCount(maxSurge, replicas, true);
  if (replicas - unavailable < 1 || surge + unavailable === 0) [maxSurge, maxUnavailable] = ['1', '0'];
  return { seed, replicas, maxSurge, maxUnavailable, preStopSeconds: PRESTOPS[r.int(PRESTOPS.length)]!, graceSeconds: GRACES[r.int(GRACES.length)]! };
}

/** The case's edits to the 2048 manifests (safe and naive layouts alike). */
export function editFor(c: CampaignCase): (file: string, text: string) => string {
  return (_file, text) => {
    if (!/kind: Deployment/.test(text)) return text;
    let t = text.replace(/replicas: \d+/, `replicas: ${c.replicas}`);
    t = t.replace(/maxSurge: \S+/, `maxSurge: ${c.maxSurge}`).replace(/maxUnavailable: \S+/, `maxUnavailable: ${c.maxUnavailable}`);
    if (/sleep \d+/.test(t)) {
      t =
        c.preStopSeconds === null
          ? t.replace(/\n {10}lifecycle:\n {12}preStop:\n {14}exec:\n {16}command: .*\n?/, '\n')
          : t.replace(/sleep \d+/, `sleep ${c.preStopSeconds}`);
    }
    // Long requests: every user request takes a seeded lognormal time (median 0.5 s, p99 4 s world), so requests
    // are in flight when targets deregister and pods stop.
    t = t.replace(/(\n( *)image: .*\n)/, `$1$2env:\n$2  - name: LAB_BEHAVIOR\n$2    value: "${LONG_REQUESTS}"\n`);
    if (/terminationGracePeriodSeconds: \d+/.test(t)) {
      t = c.graceSeconds === null ? t.replace(/\n {6}terminationGracePeriodSeconds: \d+/, '') : t.replace(/terminationGracePeriodSeconds: \d+/, `terminationGracePeriodSeconds: ${c.graceSeconds}`);
    }
    return t;
  };
}

function brief(s: ScenarioResult): Record<string, unknown> {
  return {
    requests: s.requests,
    non2xx: s.non2xx,
    responses: s.responses,
    worldRolloutSeconds: s.world.rolloutSeconds,
    worldLongestErrorWindowSeconds: s.world.longestErrorWindowSeconds,
    ...(s.world.planEstimateSeconds !== undefined ? { planEstimateSeconds: s.world.planEstimateSeconds } : {}),
    ...(s.world.workloadsPhaseSeconds !== undefined ? { workloadsPhaseSeconds: s.world.workloadsPhaseSeconds } : {}),
  };
}

async function main(): Promise<void> {
  const seeds = process.env.BENCH_CAMPAIGN_SEEDS
    ? process.env.BENCH_CAMPAIGN_SEEDS.split(',').map(Number)
    : Array.from({ length: Math.max(1, Math.min(20, Number(process.env.BENCH_CAMPAIGN_N ?? 6))) }, (_, i) => i + 1);
  const examplesDir = join(root, 'examples', '2048');
  const started = performance.now();
  let safeErrors = 0;
  let naiveErrors = 0;
  let safeFailedRuns = 0;
  let maxWorldRollout = 0;
  let worstLagMs = 0;
  /** plan's estimate vs the measured (world) rollout, in percent over (+) or under (−). */
  const estimateErrors: number[] = [];
  for (const seed of seeds) {
    const c = drawCase(seed);
    const common = {
      examplesDir,
      profile: 'realistic' as const,
      seed,
      timings: { timeScale: TIME_SCALE ?? 10 },
      ratePerSecond: 30,
      minRequests: 300,
      edit: editFor(c),
      rolloutTimeoutSeconds: 240,
    };
    const line: Record<string, unknown> = { case: c };
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    try {
      const safe = await runScenarioInLab('safe', common);
      safeErrors += safe.non2xx;
      maxWorldRollout = Math.max(maxWorldRollout, safe.world.rolloutSeconds);
      if (safe.world.planEstimateSeconds !== undefined && safe.world.workloadsPhaseSeconds) {
        estimateErrors.push(Math.round((safe.world.planEstimateSeconds / safe.world.workloadsPhaseSeconds - 1) * 100));
      }
      line.safe = brief(safe);
    } catch (e) {
      safeFailedRuns++;
      line.safe = { failed: (e as Error).message.slice(0, 2000) };
    }
    try {
      const naive = await runScenarioInLab('naive', common);
      naiveErrors += naive.non2xx;
      line.naive = brief(naive);
    } catch (e) {
      line.naive = { failed: (e as Error).message.slice(0, 2000) };
    }
    lag.disable();
    const lagMs = Math.round(lag.max / 1e6);
    worstLagMs = Math.max(worstLagMs, lagMs);
    line.worstEventLoopDelayMs = lagMs;
    process.stderr.write(`${JSON.stringify(line)}\n`);
  }
  const results: BenchResult[] = [
    { name: `campaign: safe non-2xx over ${seeds.length} seeded realistic rollouts`, value: safeErrors, unit: 'requests', target: '0' },
    { name: 'campaign: safe deploys that did not complete', value: safeFailedRuns, unit: 'runs', target: '0' },
    { name: 'campaign: naive non-2xx on the same seeds', value: naiveErrors, unit: 'requests', target: '> 0' },
    { name: 'campaign: longest safe rollout (world time)', value: maxWorldRollout, unit: 's', target: 'for reference' },
    {
      name: 'campaign: plan estimate vs the measured workloads phase, worst single run',
      value: estimateErrors.length ? estimateErrors.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a)) : 0,
      unit: '%',
      target: 'for reference (the estimate bench judges ±15 on means)',
    },
    { name: 'campaign: worst event-loop delay (above ~1000 ms the timings were not met)', value: worstLagMs, unit: 'ms', target: '< 250' },
    { name: 'campaign: wall time', value: Math.round((performance.now() - started) / 100) / 10, unit: 's', target: '< 600' },
    { name: 'campaign: peak RSS', value: peakRssMb(), unit: 'MB', target: '< 1500' },
  ];
  report(results);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
