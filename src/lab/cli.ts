import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, exitCodeOf } from '../errors.js';
import { streamLogger } from '../report/log.js';
import { ExperimentError, renderExperimentText, runExperiment, type ScenarioName } from './experiment.js';
import { ControlPlaneSetupError, ControlPlaneStartError, buildControlPlane, requireBinary } from './controlplane/build.js';
import { startLab, type ControlPlaneTier } from './index.js';
import { DEFAULT_TIMINGS, type LabTimings } from './timing.js';

/** The `alb-rollout lab …` verbs. Kept inside lab/ so that product code never imports the lab. */

export interface LabCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: () => Promise<string>;
}

export interface LabUpArgs {
  stateDir: string;
  controlPlane: ControlPlaneTier;
  timeScale?: number;
  webhook: boolean;
  token?: string;
}

/** examples/2048 in the working directory, else the one shipped beside this code (src/ or dist/). */
export function defaultExamplesDir(cwd: string): string {
  const local = join(cwd, 'examples', '2048');
  if (existsSync(local)) return local;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'examples', '2048');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return local;
}

export function parseTimeScale(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 1 || n > 1000) {
    throw InputError.single(`--time-scale "${value}" is not a number from 1 to 1000`, 'use e.g. --time-scale 20 (1 = real time)');
  }
  return n;
}

export function parseControlPlane(value: string | undefined): ControlPlaneTier {
  if (value === undefined || value === 'embedded') return 'embedded';
  if (value === 'real') return 'real';
  throw InputError.single(`--control-plane "${value}" is not embedded or real`, 'use --control-plane embedded (the default, in-process) or --control-plane real (built by `lab build --control-plane real`)');
}

/** Setup problems (no Go, not built yet) end with the fix and exit code 2, never a stack trace. */
async function setupErrors(io: LabCliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ControlPlaneStartError) {
      io.stderr(`error: the real control plane did not start: ${err.message}\n  every process it started is stopped; their logs: ${err.logsDir}\n`);
      return 1;
    }
    if (!(err instanceof ControlPlaneSetupError)) throw err;
    io.stderr(`error: ${err.message}\n  fix: ${err.fix}\n`);
    return 2;
  }
}

export function labBuild(io: LabCliIo): Promise<number> {
  return setupErrors(io, async () => {
    const r = await buildControlPlane({ cwd: io.cwd, env: process.env, progress: (line) => io.stderr(`${line}\n`) });
    io.stdout(
      `${r.cached ? 'cached' : 'built'}: Kubernetes ${r.source.kubernetesVersion} control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd ${r.source.etcdVersion})\n` +
        `  binary  ${r.path}\n  took    ${r.seconds.toFixed(1)}s\n  next    npx alb-rollout lab up --control-plane real\n`,
    );
    return 0;
  });
}

export function labUp(args: LabUpArgs, io: LabCliIo): Promise<number> {
  return setupErrors(io, () => runLabUp(args, io));
}

async function runLabUp(args: LabUpArgs, io: LabCliIo): Promise<number> {
  const stateDir = resolve(io.cwd, args.stateDir);
  const timings: Partial<LabTimings> = args.timeScale ? { timeScale: args.timeScale } : {};
  // Never builds: a missing binary is a setup error naming `lab build`.
  const binary = args.controlPlane === 'real' ? (await requireBinary(io.cwd, process.env)).path : undefined;
  const started = Date.now();
  const lab = await startLab({
    stateDir,
    timings,
    webhookEnabled: args.webhook,
    controlPlane: args.controlPlane,
    ...(binary ? { binary } : {}),
    ...(args.token ? { token: args.token } : {}),
    ...(binary ? { log: (line: string) => io.stderr(`${line}\n`) } : {}),
  });
  const scale = lab.clock.timings.timeScale;
  const tier =
    lab.controlPlane === 'real'
      ? `real control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler (pids ${Object.entries(lab.real?.pids() ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}; logs in ${lab.real?.dir}), up in ${((Date.now() - started) / 1000).toFixed(1)}s`
      : 'embedded control plane (in-process)';
  io.stdout(
    [
      `lab is up (time runs ${scale}× faster than on AWS; loopback only)`,
      `  control plane    ${tier}`,
      `  Kubernetes API   ${lab.apiServerUrl}`,
      `  kubeconfig       ${lab.kubeconfigPath}`,
      `  ELBv2 API        ${lab.aws.elbv2Url}`,
      `  CloudWatch API   ${lab.aws.cloudwatchUrl}`,
      `  state            ${stateDir}/lab.json (load balancers — ALB URLs, NLB addresses — and response counts, refreshed every 2 s)`,
      `  readiness-gate webhook ${args.webhook ? 'on' : 'OFF (pods are admitted without gates)'}`,
      '',
      'Use it from another shell:',
      `  . ${stateDir}/aws.env          # KUBECONFIG and AWS_* for the lab`,
      `  kubectl get pods -A -o wide`,
      `  npx alb-rollout deploy -f examples/2048/safe --lab ${stateDir}   # kubeconfig, AWS endpoints and clock from lab.json`,
      `  npx alb-rollout analyze -n game-2048 --ingress ingress-2048 --lab ${stateDir}`,
      `  curl "$(jq -r '.albs[0].url' ${stateDir}/lab.json)"`,
      '',
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  const signal = await io.stopSignal();
  io.stderr(`\n${signal}: stopping the lab…\n`);
  await lab.writeState();
  await lab.stop();
  io.stderr('lab stopped\n');
  return 0;
}

export interface ExperimentArgs {
  format: 'text' | 'json';
  controlPlane: ControlPlaneTier;
  scenarios: ScenarioName[];
  ratePerSecond: number;
  timeScale?: number;
  examplesDir: string;
}

export function labExperiment(args: ExperimentArgs, io: LabCliIo): Promise<number> {
  return setupErrors(io, () => runLabExperiment(args, io));
}

async function runLabExperiment(args: ExperimentArgs, io: LabCliIo): Promise<number> {
  const binary = args.controlPlane === 'real' ? (await requireBinary(io.cwd, process.env)).path : undefined;
  const log = streamLogger(io.stderr, { progressEveryMs: 3000 });
  const started = Date.now();
  let result: Awaited<ReturnType<typeof runExperiment>>;
  try {
    result = await runExperiment({
      examplesDir: resolve(io.cwd, args.examplesDir),
      scenarios: args.scenarios,
      ratePerSecond: args.ratePerSecond,
      timings: { timeScale: args.timeScale ?? DEFAULT_TIMINGS.timeScale },
      log,
      controlPlane: { tier: args.controlPlane, ...(binary ? { binary } : {}) },
    });
  } catch (err) {
    if (err instanceof ControlPlaneSetupError || err instanceof ControlPlaneStartError) throw err; // reported by setupErrors
    // One message, no stack: ExperimentError says what was expected and seen; anything else is named as a lab bug.
    const known = err instanceof ExperimentError || err instanceof InputError;
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`error: lab experiment stopped: ${known ? message : `${message}\n  (unexpected: please report it as a lab bug with this message)`}\n`);
    return exitCodeOf(err);
  }
  if (args.format === 'json') {
    io.stdout(`${JSON.stringify(result)}\n`);
  } else {
    io.stdout(`\nThe seed experiment: 2048 (5 replicas) rolled from :latest to :v2 under ${args.ratePerSecond} requests/s through the ALB\n\n`);
    io.stdout(renderExperimentText(result));
    const naive = result.scenarios.find((s) => s.name === 'naive');
    const safe = result.scenarios.find((s) => s.name === 'safe');
    if (naive && safe) {
      io.stdout(`\nnaive: ${naive.non2xx} of ${naive.requests} requests failed; safe (alb-rollout deploy): ${safe.non2xx} of ${safe.requests}.\n`);
    }
    io.stdout(`(took ${Math.round((Date.now() - started) / 1000)}s)\n`);
  }
  const safe = result.scenarios.find((s) => s.name === 'safe');
  return safe && safe.non2xx > 0 ? 1 : 0;
}
