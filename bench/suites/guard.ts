/**
 * The guard on bad releases in the lab (5 runs): time from the first 5xx a client received to the rollback's write
 * at the API server, and how many 5xx clients received per bad release (a steady 40 requests/s through the ALB).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awsClock } from '../../src/aws/clock.js';
import { CloudWatchReader } from '../../src/aws/cloudwatch.js';
import { Elbv2Reader } from '../../src/aws/elbv2.js';
import { parseGuardOptions } from '../../src/guard/index.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { writeKubeconfig } from '../../src/lab/apiserver/index.js';
import { startLab, type Lab } from '../../src/lab/index.js';
import { TrafficGenerator } from '../../src/lab/traffic/index.js';
import type { JsonObject } from '../../src/manifests/types.js';
import { parseOptions } from '../../src/options.js';
import { preflight } from '../../src/preflight/index.js';
import { silentLogger } from '../../src/report/log.js';
import { runDeploy, type DeployResult } from '../../src/rollout/deploy.js';
import { median, report } from '../types.js';
import { labBehavior, writeRelease } from '../../src/lab/variants.js';

const root = join(import.meta.dirname, '..', '..');
const PROBE_RATE = 20;

function release(dir: string, tag: string, behavior?: string): Promise<string> {
  return writeRelease(join(root, 'examples', '2048', 'safe'), join(dir, tag), tag, labBehavior(behavior));
}

async function deploy(lab: Lab, dir: string, kubeconfig: string): Promise<DeployResult> {
  const kube = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }, {}));
  const credentials = { accessKeyId: 'lab', secretAccessKey: 'lab' };
  const elbv2 = new Elbv2Reader({ region: lab.region, endpoint: lab.aws.elbv2Url, credentials });
  const clock = awsClock(lab.clock.timings.timeScale, lab.alb.epoch.originMs);
  const cloudwatch = new CloudWatchReader({ region: lab.region, endpoint: lab.aws.cloudwatchUrl, credentials }, { now: () => clock.now() });
  try {
    const pre = await preflight(parseOptions({ manifests: [dir], baseDir: root, tune: 'auto' }, { tune: 'auto' }, []), {});
    return await runDeploy(
      pre,
      {
        dryRun: false,
        forceConflicts: true,
        readinessGates: 'inject',
        timeouts: { routingSeconds: 60, rolloutSeconds: 120 },
        timeScale: lab.clock.timings.timeScale,
        guard: parseGuardOptions({ 'probe-rate': String(PROBE_RATE), 'cloudwatch-settle': '0', bake: '4s', 'target-health-interval': '500ms' }),
        rollback: 'auto',
      },
      { kube, elbv2, cloudwatch, clock, log: silentLogger, now: Date.now, probeUrlFor: async (h) => lab.albs().find((a) => a.hostname === h)?.url },
    );
  } finally {
    elbv2.destroy();
    cloudwatch.destroy();
  }
}


const work = await mkdtemp(join(tmpdir(), 'alb-bench-guard-'));
const lab = await startLab();
try {
  const kubeconfig = join(work, 'kubeconfig');
  await writeKubeconfig(kubeconfig, lab.apiServerUrl);
  const first = await deploy(lab, await release(work, 'good'), kubeconfig);
  if (first.result !== 'succeeded') throw new Error(`install failed: ${first.error}`);
  const url = lab.albs()[0]?.url as string;
  const latencies: number[] = [];
  const fivexx: number[] = [];
  let rolledBack = 0;
  for (let run = 1; run <= 5; run++) {
    const bad = await release(work, `bad${run}`, 'error-500');
    // The rollback's write: the first Deployment update after the bad release whose template is the good one again.
    let rollbackWriteAt = 0;
    let badWritten = false;
    const unwatch = lab.store.watch('Deployment', 'game-2048', undefined, (e) => {
      const image = String(((((e.object.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[])[0]?.image ?? '');
      if (image.endsWith(`:bad${run}`)) badWritten = true;
      else if (badWritten && rollbackWriteAt === 0 && image.endsWith(':good')) rollbackWriteAt = Date.now();
    });
    const traffic = new TrafficGenerator({ url, ratePerSecond: 40, maxRequests: 10_000, maxDurationMs: 120_000, timeoutMs: 15_000 });
    traffic.start();
    const r = await deploy(lab, bad, kubeconfig);
    const summary = await traffic.stop();
    unwatch();
    if (r.result === 'rolled-back') rolledBack++;
    else process.stderr.write(`bad release ${run} not rolled back: result ${r.result}${r.error ? `: ${r.error}` : ''} — ${r.guard?.decision.reason ?? 'no guard decision'}\n`);
    const first5xx = Math.min(...traffic.records.filter((x) => x.status >= 500).map((x) => x.at));
    if (Number.isFinite(first5xx) && rollbackWriteAt > 0) latencies.push((rollbackWriteAt - first5xx) / 1000);
    fivexx.push(Object.entries(summary.responses).filter(([c]) => c.startsWith('5')).reduce((a, [, n]) => a + n, 0));
  }
  report([
    { name: 'guard: bad releases rolled back (of 5)', value: rolledBack, unit: 'releases', target: '5' },
    { name: 'guard: first 5xx served → rollback write (median of 5)', value: Math.round(median(latencies) * 100) / 100, unit: 's', target: '<= 3' },
    { name: 'guard: first 5xx served → rollback write (max of 5)', value: Math.round(Math.max(...latencies) * 100) / 100, unit: 's', target: '<= 3' },
    { name: 'guard: 5xx served to clients per bad release at 40 req/s (median of 5)', value: median(fivexx), unit: 'responses', target: `< ${PROBE_RATE * 5} (probe rate × 5 s)` },
    { name: 'guard: 5xx served to clients per bad release at 40 req/s (max of 5)', value: Math.max(...fivexx), unit: 'responses', target: `< ${PROBE_RATE * 5}` },
  ]);
} finally {
  await lab.stop();
  await rm(work, { recursive: true, force: true });
}
