import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { requireBinary } from '../../src/lab/controlplane/build.js';
import { requireRealLbc } from '../../src/lab/cli.js';
import { startLab, type ControlPlaneTier, type Lab, type LabOptions, type LbcTier } from '../../src/lab/index.js';
import { TrafficGenerator } from '../../src/lab/traffic/index.js';
import { writeRelease, type ManifestEdit } from '../../src/lab/variants.js';

export const root = join(import.meta.dirname, '..', '..');

export interface E2eLab {
  lab: Lab;
  dir: string;
  kubeconfig: string;
  env: Record<string, string>;
  /** Runs the CLI from source in a child process, as a user would (own env, own exit code). */
  cli(args: string[], options?: { timeoutMs?: number; env?: Record<string, string> }): Promise<{ code: number; stdout: string; stderr: string }>;
  kubectl(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export interface ProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** How long a command may run before its output so far, and from then on all of it, goes to the test's stderr. */
const SLOW_COMMAND_MS = 90_000;

/**
 * Runs a command from the repository root with exactly `env`, killed after `timeoutMs`. A command still running
 * after SLOW_COMMAND_MS shows its output on the test's stderr (what it printed so far, then live), so that a run the
 * test runner's own timeout ends — which reports no output of its own — still says where it waited.
 */
export function runProcess(
  cmd: string,
  args: string[],
  options: { env: Record<string, string>; timeoutMs: number; slowMs?: number; showSlow?: (text: string) => void },
): Promise<ProcessRun> {
  const slowMs = options.slowMs ?? SLOW_COMMAND_MS;
  const showSlow = options.showSlow ?? ((text: string) => void process.stderr.write(text));
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: options.env });
    let stdout = '';
    let stderr = '';
    let live = false;
    const show = (text: string): void => {
      if (live) showSlow(text);
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      show(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      show(d.toString());
    });
    const slow = setTimeout(() => {
      if (options.timeoutMs <= slowMs) return;
      live = true;
      const what = [cmd, ...args].map((a) => (a.length > 80 ? `${a.slice(0, 77)}...` : a)).join(' ');
      showSlow(`\n[test] still running after ${slowMs / 1000} s: ${what}\n[test] its output so far:\n${stdout}${stderr}\n[test] (live from here)\n`);
    }, slowMs);
    const timer = setTimeout(() => {
      stderr += `\n[test] killed after ${options.timeoutMs} ms`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(slow);
      if (live) showSlow(`\n[test] ${cmd} ended after the slow mark, exit ${code ?? 'signal'}\n`);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** `alb-rollout ARGS` from source, without a lab of the test's own (e.g. `lab experiment`), as a user runs it. */
export function runCliFromSource(args: string[], timeoutMs: number): Promise<ProcessRun> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, NODE_NO_WARNINGS: '1', AWS_EC2_METADATA_DISABLED: 'true' };
  return runProcess(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { env, timeoutMs });
}

/**
 * The control planes the e2e suite runs on, from ALB_ROLLOUT_TEST_TIER: embedded (default: `npm test` needs no Go),
 * real (the built kube-apiserver + etcd + kube-controller-manager + kube-scheduler) or both.
 */
export function testTiers(env: NodeJS.ProcessEnv = process.env): ControlPlaneTier[] {
  const v = (env.ALB_ROLLOUT_TEST_TIER ?? 'embedded').trim();
  if (v === '' || v === 'embedded') return ['embedded'];
  if (v === 'real') return ['real'];
  if (v === 'both') return ['embedded', 'real'];
  throw new Error(`ALB_ROLLOUT_TEST_TIER="${v}" is not embedded, real or both`);
}

/**
 * The LBC on the real tier, from ALB_ROLLOUT_TEST_LBC: emulated (default: the lab's port) or real (the AWS Load
 * Balancer Controller's binary, built by `lab build --lbc real`; `npm run test:real-lbc`). The embedded tier
 * always runs the emulation.
 */
export function testLbc(env: NodeJS.ProcessEnv = process.env): LbcTier {
  const v = (env.ALB_ROLLOUT_TEST_LBC ?? 'emulated').trim();
  if (v === '' || v === 'emulated') return 'emulated';
  if (v === 'real') return 'real';
  throw new Error(`ALB_ROLLOUT_TEST_LBC="${v}" is not emulated or real`);
}

/** `name [embedded]` / `name [real]` / `name [real, real LBC]`: the tier is in every test's name. */
export function tierName(name: string, tier: ControlPlaneTier): string {
  return tier === 'real' && testLbc() === 'real' ? `${name} [real, real LBC]` : `${name} [${tier}]`;
}

/**
 * One describe per tier. `realOnly` names why a suite cannot run on the embedded tier (it needs what only a real
 * API server does, e.g. RBAC); it is reported there as skipped with that reason. `embeddedOnly` names why a suite cannot run on the real tier (it injects faults the
 * embedded API server implements): there it is reported as skipped with that reason, never as passed.
 */
export function describeTiers(name: string, fn: (tier: ControlPlaneTier) => void, opts: { embeddedOnly?: string; emulatedLbcOnly?: string; realOnly?: string } = {}): void {
  for (const tier of testTiers()) {
    if (tier === 'real' && opts.embeddedOnly) describe(tierName(name, tier), { skip: `embedded tier only: ${opts.embeddedOnly}` }, () => undefined);
    else if (tier === 'real' && testLbc() === 'real' && opts.emulatedLbcOnly) describe(tierName(name, tier), { skip: `the lab's LBC emulation only: ${opts.emulatedLbcOnly}` }, () => undefined);
    else if (tier === 'embedded' && opts.realOnly) describe(tierName(`${name} (real tier only: ${opts.realOnly})`, tier), { skip: `real tier only: ${opts.realOnly}` }, () => undefined);
    else describe(tierName(name, tier), () => fn(tier));
  }
}

/**
 * Lab options for a tier (the real tier needs the cached binary: `alb-rollout lab build --control-plane real`;
 * with ALB_ROLLOUT_TEST_LBC=real also `lab build --lbc real`).
 */
export async function tierOptions(tier: ControlPlaneTier): Promise<Pick<LabOptions, 'controlPlane' | 'binary' | 'lbc' | 'realLbc'>> {
  if (tier === 'embedded') return { controlPlane: 'embedded' };
  const binary = (await requireBinary(root, process.env)).path;
  if (testLbc() === 'real') return { controlPlane: 'real', binary, lbc: 'real', realLbc: await requireRealLbc(root, process.env) };
  return { controlPlane: 'real', binary };
}

export async function e2eLab(options: LabOptions = {}, tier: ControlPlaneTier = 'embedded'): Promise<E2eLab> {
  const dir = await mkdtemp(join(tmpdir(), 'alb-e2e-'));
  const lab = await startLab({ stateDir: join(dir, 'state'), ...(await tierOptions(tier)), ...options });
  const kubeconfig = lab.kubeconfigPath as string;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    NODE_NO_WARNINGS: '1',
    KUBECONFIG: kubeconfig,
    ...lab.awsEnv(),
  };
  const run = (cmd: string, args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}) => runProcess(cmd, args, { env: { ...env, ...extraEnv }, timeoutMs });
  return {
    lab,
    dir,
    kubeconfig,
    env,
    cli: (args, o = {}) => run(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], o.timeoutMs ?? 120_000, o.env),
    kubectl: (args, timeoutMs = 60_000) => run('kubectl', ['--kubeconfig', kubeconfig, ...args], timeoutMs),
    stop: async () => {
      await lab.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A copy of an example folder with every image re-tagged (and optional text edits), in `dir`. */
export function variant(example: string, dir: string, tag: string, edit?: ManifestEdit): Promise<string> {
  return writeRelease(join(root, 'examples', example), join(dir, `${example.replace(/\//g, '-')}-${tag}`), tag, edit);
}

export function albUrl(lab: Lab): string {
  const alb = lab.albs()[0];
  if (!alb) throw new Error(`no ALB in the lab yet: ${JSON.stringify(lab.albs())}`);
  return alb.url;
}

/** A steady request loop (≥ 20 requests/s) through the lab ALB, bounded in count and time. */
export function traffic(url: string, ratePerSecond = 40, host?: string): TrafficGenerator {
  const t = new TrafficGenerator({ url, ratePerSecond, maxRequests: 12_000, maxDurationMs: 180_000, timeoutMs: 15_000, ...(host ? { host } : {}) });
  t.start();
  return t;
}

/** Connect the CLI to this lab (kubeconfig, AWS endpoints, clock from lab.json); a short bake keeps tests quick. */
export function labArgs(l: E2eLab, bake = '1s'): string[] {
  return ['--lab', join(l.dir, 'state'), '--bake', bake];
}
