/**
 * The real control plane (lab/controlplane): `lab build` with the binary cached (the function and the CLI as a user
 * runs it), `lab up --control-plane real` start time, and the memory of the tier's processes (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, and the lab's own Node.js process: kubelet, LBC emulation, ALB) idle and
 * after a 5-replica rollout. The cold build (empty Go build cache, modules already downloaded: 15-30 min on two
 * cores) runs only with BENCH_CONTROLPLANE_COLD=1, into a temporary GOCACHE and cache directory (the real cache is
 * not touched): wall time, CPU time and peak memory. Without a built binary the suite reports nothing for the real
 * tier and says so (never a number it did not measure).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { buildControlPlane, findCachedBinary, findSourceDir, readSource } from '../../src/lab/controlplane/build.js';
import { startLab } from '../../src/lab/index.js';
import type { BenchResult } from '../types.js';
import { report } from '../types.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
const results: BenchResult[] = [];
const note = (s: string): void => void process.stderr.write(`${s}\n`);

async function rssMb(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: Math.round(kb('VmRSS') / 102.4) / 10, hwm: Math.round(kb('VmHWM') / 102.4) / 10 };
  } catch {
    return undefined;
  }
}

async function memory(pids: Record<string, number>, label: string): Promise<void> {
  let total = 0;
  // The lab's own parts run in this process, as they do in `lab up`.
  for (const [name, pid] of Object.entries({ ...pids, 'lab node process (kubelet, LBC, ALB)': process.pid })) {
    const m = await rssMb(pid);
    if (!m) continue;
    total += m.rss;
    results.push({ name: `real tier ${name} RSS ${label}`, value: m.rss, unit: 'MB', target: '< 1000' });
  }
  results.push({ name: `real tier RSS total (control plane + lab process) ${label}`, value: Math.round(total), unit: 'MB', target: '< 2500' });
}

function kubectl(args: string[], timeoutMs: number): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', args, { encoding: 'utf8', timeout: timeoutMs }, (err, _stdout, stderr) => resolve({ ok: !err, stderr: `${stderr}${err ? ` (${err.message})` : ''}` }));
  });
}

const env = process.env;
if (env.BENCH_CONTROLPLANE_COLD === '1') {
  const scratch = await mkdtemp(join(tmpdir(), 'alb-bench-cold-'));
  try {
    const started = performance.now();
    // /usr/bin/time -v reports the peak memory of the whole build (the link is the peak).
    const r = spawnSync('/usr/bin/time', ['-v', process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'build', '--control-plane', 'real'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...env, GOCACHE: join(scratch, 'gocache'), XDG_CACHE_HOME: join(scratch, 'cache') },
      timeout: 60 * 60 * 1000,
    });
    if (r.status === 0) {
      results.push({ name: 'real tier cold build (empty Go build cache)', value: Math.round((performance.now() - started) / 1000), unit: 's', target: '< 1800' });
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
      if (Number.isFinite(kb)) results.push({ name: 'real tier cold build peak memory', value: Math.round(kb / 1024), unit: 'MB', target: '< 4096' });
      const cpu = ['User', 'System'].map((k) => Number(new RegExp(`${k} time \\(seconds\\): ([\\d.]+)`).exec(r.stderr)?.[1] ?? NaN)).reduce((a, b) => a + b, 0);
      if (Number.isFinite(cpu)) results.push({ name: 'real tier cold build CPU time (user + system)', value: Math.round(cpu), unit: 's', target: '< 3600' });
    } else note(`cold build failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
} else {
  note('cold build not measured (set BENCH_CONTROLPLANE_COLD=1: 15-30 min on two cores)');
}

const source = await readSource(findSourceDir(root));
const cached = await findCachedBinary(source, env);
if (!cached) {
  note(`real tier not measured: the control plane is not built (${source.kubernetesVersion}); run \`npx alb-rollout lab build --control-plane real\``);
} else {
  const t0 = performance.now();
  await buildControlPlane({ cwd: root, env, progress: () => undefined });
  results.push({ name: 'real tier lab build (binary cached)', value: Math.round(performance.now() - t0), unit: 'ms', target: '< 5000' });
  const tc = performance.now();
  const cli = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'build', '--control-plane', 'real'], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
  if (cli.status === 0) {
    results.push({ name: 'real tier lab build CLI (binary cached)', value: Math.round((performance.now() - tc) / 100) / 10, unit: 's', target: '< 10' });
  } else note(`cached \`lab build\` not measured (exit ${cli.status}): ${cli.stderr.slice(-1000)}`);

  const dir = await mkdtemp(join(tmpdir(), 'alb-bench-real-'));
  try {
    const t1 = performance.now();
    const lab = await startLab({ controlPlane: 'real', binary: cached.path, stateDir: join(dir, 'state') });
    results.push({ name: 'real tier lab up (start to usable)', value: Math.round((performance.now() - t1) / 100) / 10, unit: 's', target: '< 60' });
    try {
      await memory(lab.real?.pids() ?? {}, 'idle');
      const kubeconfig = lab.kubeconfigPath as string;
      // Asynchronously: the lab's kubelet and controllers run in this process and must go on while kubectl waits.
      const apply = await kubectl(['--kubeconfig', kubeconfig, 'apply', '--server-side', '-f', join(root, 'examples/2048/safe')], 120_000);
      const status = apply.ok ? await kubectl(['--kubeconfig', kubeconfig, 'rollout', 'status', '-n', 'game-2048', 'deployment/deployment-2048', '--timeout=120s'], 130_000) : apply;
      if (apply.ok && status.ok) await memory(lab.real?.pids() ?? {}, 'after a 5-replica rollout');
      else note(`rollout not measured: ${apply.stderr}${status.stderr}`);
    } finally {
      await lab.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

report(results);
