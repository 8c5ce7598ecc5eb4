/**
 * deploy against the lab: how soon deploy finishes after the last new target turned healthy (5 image updates),
 * how many ELBv2 calls it makes per (simulated) minute per target group, how many Kubernetes lists (watches, not
 * polling), and CPU and peak memory of a 50-replica deploy (lab and tool in one process: an upper bound).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Elbv2Reader } from '../../src/aws/elbv2.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { writeKubeconfig } from '../../src/lab/apiserver/index.js';
import { startLab, type Lab } from '../../src/lab/index.js';
import { parseOptions } from '../../src/options.js';
import { preflight } from '../../src/preflight/index.js';
import { silentLogger } from '../../src/report/log.js';
import { runDeploy, type DeployResult } from '../../src/rollout/deploy.js';
import { deploymentRolloutStatus } from '../../src/plan/checks/rollout-status.js';
import { median, peakRssMb, report, type BenchResult } from '../types.js';
import { writeRelease, type ManifestEdit } from '../../src/lab/variants.js';

const root = join(import.meta.dirname, '..', '..');

function variant(dir: string, tag: string, replicas?: number): Promise<string> {
  const setReplicas: ManifestEdit = (_f, t) => (replicas ? t.replace(/replicas: \d+/, `replicas: ${replicas}`) : t);
  return writeRelease(join(root, 'examples', '2048', 'safe'), join(dir, `safe-${tag}-${replicas ?? 5}`), tag, setReplicas);
}

async function deploy(lab: Lab, dir: string, kubeconfig: string): Promise<DeployResult> {
  const kube = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }, {}));
  const elbv2 = new Elbv2Reader({ region: lab.region, endpoint: lab.aws.elbv2Url, credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } });
  try {
    const pre = await preflight(parseOptions({ manifests: [dir], baseDir: root, tune: 'auto' }, { tune: 'auto' }, []), {});
    return await runDeploy(
      pre,
      { dryRun: false, forceConflicts: true, readinessGates: 'inject', timeouts: { routingSeconds: 120, rolloutSeconds: 300 }, timeScale: lab.clock.timings.timeScale },
      { kube, elbv2, log: silentLogger, now: Date.now },
    );
  } finally {
    elbv2.destroy();
  }
}


const work = await mkdtemp(join(tmpdir(), 'alb-bench-deploy-'));
const results: BenchResult[] = [];
try {
  const lab = await startLab();
  const kubeconfig = join(work, 'kubeconfig');
  await writeKubeconfig(kubeconfig, lab.apiServerUrl);
  const first = await deploy(lab, await variant(work, 'v0'), kubeconfig);
  if (first.result !== 'succeeded') throw new Error(`first install failed: ${first.error}`);
  const lags: number[] = [];
  const callsPerMinute: number[] = [];
  const lists: number[] = [];
  for (let i = 1; i <= 5; i++) {
    const dir = await variant(work, `v${i}`);
    const historyFrom = lab.alb.history.length;
    // When the Deployment last became rollout-complete, as the lab's store saw it.
    let rolloutDoneAt = 0;
    const unwatch = lab.store.watch('Deployment', 'game-2048', undefined, (e) => {
      if (deploymentRolloutStatus(e.object).done && rolloutDoneAt === 0) rolloutDoneAt = Date.now();
      else if (!deploymentRolloutStatus(e.object).done) rolloutDoneAt = 0;
    });
    const started = Date.now();
    const r = await deploy(lab, dir, kubeconfig);
    const finished = Date.now();
    unwatch();
    if (r.result !== 'succeeded') throw new Error(`update ${i} failed: ${r.error}`);
    // The last underlying condition: the last new target healthy, the last old target gone, the rollout complete.
    const events = lab.alb.history.slice(historyFrom).filter((e) => (e.kind === 'state' && e.state === 'healthy') || e.kind === 'removed');
    const lastCondition = Math.max(rolloutDoneAt, ...events.map((e) => e.at));
    lags.push((finished - lastCondition) / 1000);
    const simulatedMinutes = lab.clock.simulatedSeconds(finished - started) / 60;
    const elbv2Calls = Object.values(r.apiCalls.elbv2).reduce((a, b) => a + b, 0);
    callsPerMinute.push(elbv2Calls / Math.max(simulatedMinutes, 1 / 60) / Math.max(1, r.targetGroupArns.length));
    lists.push(r.apiCalls.kubernetes.list ?? 0);
  }
  results.push(
    { name: 'deploy: last underlying condition → deploy done (median of 5)', value: Math.round(median(lags) * 1000) / 1000, unit: 's', target: '<= 0.5' },
    { name: 'deploy: ELBv2 calls per simulated minute per target group (median)', value: Math.round(median(callsPerMinute) * 10) / 10, unit: 'calls/min', target: '<= 30' },
    { name: 'deploy: Kubernetes list calls per image update (median)', value: median(lists), unit: 'lists', target: 'constant (watches, not polling)' },
  );
  await lab.stop();

  // 50 replicas: CPU and peak memory of lab + deploy in this process.
  const big = await startLab();
  await writeKubeconfig(kubeconfig, big.apiServerUrl);
  const cpuBefore = process.cpuUsage();
  const t0 = Date.now();
  const install = await deploy(big, await variant(work, 'v0', 50), kubeconfig);
  const update = install.result === 'succeeded' ? await deploy(big, await variant(work, 'v1', 50), kubeconfig) : install;
  const cpu = process.cpuUsage(cpuBefore);
  if (update.result !== 'succeeded') throw new Error(`50-replica deploy failed: ${update.error}`);
  results.push(
    { name: 'deploy: 50-replica install + image update wall time', value: Math.round((Date.now() - t0) / 100) / 10, unit: 's', target: 'informational' },
    { name: 'deploy: 50-replica install + update CPU (lab + tool)', value: Math.round((cpu.user + cpu.system) / 1e5) / 10, unit: 'cpu-s', target: 'informational' },
    { name: 'deploy: 50-replica peak memory (lab + tool)', value: peakRssMb(), unit: 'MB', target: '< 500' },
  );
  await big.stop();
} finally {
  await rm(work, { recursive: true, force: true });
}
report(results);
