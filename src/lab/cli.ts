import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, exitCodeOf } from '../errors.js';
import { streamLogger } from '../report/log.js';
import { ExperimentError, renderExperimentText, runExperiment, type ScenarioName } from './experiment.js';
import { ControlPlaneSetupError, ControlPlaneStartError, buildControlPlane, requireBinary } from './controlplane/build.js';
import { DEFAULT_ANALYSIS_IMAGE } from './kubelet/process.js';
import { formatFaults, parseFaultSpec, type FaultChange, type LabFaults } from './faults.js';
import { ARGO_ROLLOUTS_COMPONENT, GoSetupError, LBC_COMPONENT, buildComponent, requireComponent, requiredModuleDir } from './gobuild.js';
import { startLab, type ControlPlaneTier, type LbcTier } from './index.js';
import { NetnsUnavailableError, checkNetns } from './reallbc/run.js';
import { DEFAULT_TIMINGS, TIMING_PROFILES, type LabTimings, type TimingProfile } from './timing.js';

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
  lbc: LbcTier;
  timeScale?: number;
  profile: TimingProfile;
  seed: number;
  /** `--faults SPEC`, parsed. */
  faults?: FaultChange;
  webhook: boolean;
  token?: string;
  /** Real tier: run the real Argo Rollouts controller too. */
  argoRollouts?: boolean;
  /** Real tier: the image repository name whose containers run dist/cli.js (default alb-rollout). */
  analysisImage?: string;
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

/** `--lbc emulated` (default: the lab's port) or `--lbc real` (the AWS Load Balancer Controller's binary; needs the real control plane). */
export function parseLbc(value: string | undefined, controlPlane: ControlPlaneTier): LbcTier {
  if (value === undefined || value === 'emulated') return 'emulated';
  if (value !== 'real') throw InputError.single(`--lbc "${value}" is not emulated or real`, 'use --lbc emulated (the default, the lab\'s port) or --lbc real (built by `lab build --lbc real`)');
  if (controlPlane !== 'real') {
    throw InputError.single('--lbc real needs --control-plane real (the real controller talks to a real kube-apiserver)', 'add --control-plane real (built by `lab build --control-plane real`), or leave out --lbc real');
  }
  return 'real';
}

/** The cached controller and its module's release files; never builds (a missing binary names `lab build --lbc real`). */
export async function requireRealLbc(cwd: string, env: NodeJS.ProcessEnv): Promise<{ binary: string; moduleDir: string }> {
  const { path } = await requireComponent(LBC_COMPONENT, cwd, env);
  const moduleDir = await requiredModuleDir(LBC_COMPONENT, cwd, env);
  checkNetns();
  return { binary: path, moduleDir };
}

/** Setup problems (no Go, not built yet, no namespaces) end with the fix and exit code 2, never a stack trace. */
async function setupErrors(io: LabCliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ControlPlaneStartError) {
      io.stderr(`error: the real control plane did not start: ${err.message}\n  every process it started is stopped; their logs: ${err.logsDir}\n`);
      return 1;
    }
    if (!(err instanceof ControlPlaneSetupError || err instanceof GoSetupError || err instanceof NetnsUnavailableError)) throw err;
    io.stderr(`error: ${err.message}\n  fix: ${err.fix}\n`);
    return 2;
  }
}

export function parseTimingProfile(value: string | undefined): TimingProfile {
  if (value === undefined || value.trim() === '') return 'fast';
  const v = value.trim();
  if ((TIMING_PROFILES as readonly string[]).includes(v)) return v as TimingProfile;
  throw InputError.single(`--timings "${value}" is not ${TIMING_PROFILES.join(' or ')}`, 'use --timings fast (constant delays) or --timings realistic (AWS-like tails)');
}

export function parseSeed(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw InputError.single(`--seed "${value}" is not an integer from 0 to 4294967295`, 'use e.g. --seed 7');
  return n;
}

export { parseFaultSpec } from './faults.js';

/** `lab build --control-plane real`, `--lbc real` and/or `--argo-rollouts`: each one built, or found cached. */
export function labBuild(what: { controlPlane: boolean; lbc: boolean; argoRollouts?: boolean; check?: boolean }, io: LabCliIo): Promise<number> {
  return setupErrors(io, async () => {
    const progress = (line: string): void => io.stderr(`${line}\n`);
    if (what.check) {
      // Builds nothing: exit 0 when every part asked for is cached, else the "not built" setup error (exit 2).
      if (what.controlPlane) io.stdout(`cached: ${(await requireBinary(io.cwd, process.env)).path}\n`);
      if (what.lbc) io.stdout(`cached: ${(await requireComponent(LBC_COMPONENT, io.cwd, process.env)).path}\n`);
      if (what.argoRollouts) io.stdout(`cached: ${(await requireComponent(ARGO_ROLLOUTS_COMPONENT, io.cwd, process.env)).path}\n`);
      return 0;
    }
    if (what.controlPlane) {
      const r = await buildControlPlane({ cwd: io.cwd, env: process.env, progress });
      io.stdout(
        `${r.cached ? 'cached' : 'built'}: Kubernetes ${r.source.kubernetesVersion} control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd ${r.source.etcdVersion})\n` +
          `  binary  ${r.path}\n  took    ${r.seconds.toFixed(1)}s\n`,
      );
    }
    if (what.lbc) {
      const r = await buildComponent(LBC_COMPONENT, { cwd: io.cwd, env: process.env, progress });
      io.stdout(`${r.cached ? 'cached' : 'built'}: the AWS Load Balancer Controller ${r.source.version}\n  binary  ${r.path}\n  took    ${r.seconds.toFixed(1)}s\n`);
    }
    if (what.argoRollouts) {
      const r = await buildComponent(ARGO_ROLLOUTS_COMPONENT, { cwd: io.cwd, env: process.env, progress });
      io.stdout(`${r.cached ? 'cached' : 'built'}: Argo Rollouts controller ${r.source.version}\n  binary  ${r.path}\n  took    ${r.seconds.toFixed(1)}s\n`);
    }
    io.stdout(`  next    npx alb-rollout lab up --control-plane real${what.lbc ? ' --lbc real' : ''}${what.argoRollouts ? ' --argo-rollouts' : ''}\n`);
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
  if (args.lbc === 'real' && !args.webhook) throw InputError.single('--no-webhook is a fault of the lab\'s LBC emulation; the real controller serves its own webhook', 'leave out --no-webhook with --lbc real, or use --lbc emulated');
  const realLbc = args.lbc === 'real' ? await requireRealLbc(io.cwd, process.env) : undefined;
  const argoRollouts = args.argoRollouts
    ? { binary: (await requireComponent(ARGO_ROLLOUTS_COMPONENT, io.cwd, process.env)).path, moduleDir: await requiredModuleDir(ARGO_ROLLOUTS_COMPONENT, io.cwd, process.env) }
    : undefined;
  const started = Date.now();
  const lab = await startLab({
    ...(realLbc ? { lbc: 'real' as const, realLbc } : {}),
    ...(argoRollouts ? { argoRollouts } : {}),
    ...(args.analysisImage ? { analysisImage: args.analysisImage } : {}),
    stateDir,
    profile: args.profile,
    seed: args.seed,
    timings,
    webhookEnabled: args.webhook,
    ...(args.faults ? { faults: args.faults } : {}),
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
      `lab is up (time runs ${scale}× faster than on AWS; ${args.profile} timings, seed ${args.seed}; loopback only)`,
      `  control plane    ${tier}`,
      `  LBC              ${realLbc ? `the real AWS Load Balancer Controller (${realLbc.binary}; in its own network namespace, log in ${lab.real?.dir}/aws-load-balancer-controller/)` : "the lab's emulation (in-process)"}`,
      ...(argoRollouts ? [`  Argo Rollouts    the real controller (pid ${lab.real?.pids()['argo-rollouts'] ?? '?'}; log ${lab.real?.argoRolloutsLog ?? '?'}); analysis image ${args.analysisImage ?? DEFAULT_ANALYSIS_IMAGE} runs dist/cli.js`] : []),
      `  Kubernetes API   ${lab.apiServerUrl}`,
      `  kubeconfig       ${lab.kubeconfigPath}`,
      `  ELBv2 API        ${lab.aws.elbv2Url}`,
      `  CloudWatch API   ${lab.aws.cloudwatchUrl}`,
      `  state            ${stateDir}/lab.json (load balancers — ALB URLs (.albs[].url; HTTPS listeners: .albs[].httpsUrl), NLB addresses — and response counts, refreshed every 2 s)`,
      `  ALB TLS CA       ${lab.albCaFile ?? '(no state dir)'} (HTTPS listeners of Ingresses with listen-ports HTTPS and certificate-arn; trust it: NODE_EXTRA_CA_CERTS=${lab.albCaFile ?? 'FILE'})`,
      `  readiness-gate webhook ${args.webhook ? 'on' : 'OFF (pods are admitted without gates)'}`,
      `  faults           ${formatFaults(lab.faults)} (change: alb-rollout lab fault --lab ${stateDir} SPEC)`,
      '',
      'Use it from another shell:',
      `  . ${stateDir}/aws.env          # KUBECONFIG and AWS_* for the lab`,
      `  kubectl get pods -A -o wide`,
      `  npx alb-rollout deploy -f examples/2048/safe --lab ${stateDir}   # kubeconfig, AWS endpoints and clock from lab.json`,
      `  npx alb-rollout analyze -n game-2048 --ingress ingress-2048 --lab ${stateDir}`,
      `  curl "$(jq -r '.albs[0].url' ${stateDir}/lab.json)"`,
      `  curl --cacert ${stateDir}/alb-ca.pem --connect-to HOST:443:$(jq -r '.albs[0].httpsUrl' ${stateDir}/lab.json | sed 's#https://##') https://HOST/   # an HTTPS listener, HOST = the rule's host`,
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
  lbc: LbcTier;
  scenarios: ScenarioName[];
  ratePerSecond: number;
  timeScale?: number;
  profile: TimingProfile;
  seed: number;
  examplesDir: string;
}

export function labExperiment(args: ExperimentArgs, io: LabCliIo): Promise<number> {
  return setupErrors(io, () => runLabExperiment(args, io));
}

async function runLabExperiment(args: ExperimentArgs, io: LabCliIo): Promise<number> {
  const binary = args.controlPlane === 'real' ? (await requireBinary(io.cwd, process.env)).path : undefined;
  const realLbc = args.lbc === 'real' ? await requireRealLbc(io.cwd, process.env) : undefined;
  const log = streamLogger(io.stderr, { progressEveryMs: 3000 });
  const started = Date.now();
  let result: Awaited<ReturnType<typeof runExperiment>>;
  try {
    result = await runExperiment({
      examplesDir: resolve(io.cwd, args.examplesDir),
      scenarios: args.scenarios,
      ratePerSecond: args.ratePerSecond,
      profile: args.profile,
      seed: args.seed,
      timings: { timeScale: args.timeScale ?? DEFAULT_TIMINGS.timeScale },
      log,
      controlPlane: { tier: args.controlPlane, ...(binary ? { binary } : {}), ...(realLbc ? { realLbc } : {}) },
    });
  } catch (err) {
    if (err instanceof ControlPlaneSetupError || err instanceof ControlPlaneStartError || err instanceof GoSetupError || err instanceof NetnsUnavailableError) throw err; // reported by setupErrors
    // One message, no stack: ExperimentError says what was expected and seen; anything else is named as a lab bug.
    const known = err instanceof ExperimentError || err instanceof InputError;
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`error: lab experiment stopped: ${known ? message : `${message}\n  (unexpected: please report it as a lab bug with this message)`}\n`);
    return exitCodeOf(err);
  }
  if (args.format === 'json') {
    io.stdout(`${JSON.stringify(result)}\n`);
  } else {
    const w = result.scenarios[0]?.world;
    const scale = w?.timeScale ?? DEFAULT_TIMINGS.timeScale;
    io.stdout(
      `\nThe seed experiment: 2048 (5 replicas) rolled from :latest to :v2 through the ALB, ${args.profile} timings (seed ${args.seed}).\n` +
        `Times are the lab's world time — what AWS would take — with real time in parentheses (the lab runs ${scale}× faster).\n` +
        `Traffic: ${args.ratePerSecond} requests per real second = ${Math.round((args.ratePerSecond / scale) * 100) / 100} requests per world second.\n\n`,
    );
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

/** `lab fault --lab DIR SPEC…`: applies SPEC to the running lab through its control endpoint (see faults.ts). */
export async function labFault(args: { labDir: string; spec?: string; format: 'text' | 'json' }, io: LabCliIo): Promise<number> {
  const dir = resolve(io.cwd, args.labDir);
  const file = join(dir, 'lab.json');
  let control: string | undefined;
  try {
    control = (JSON.parse(await readFile(file, 'utf8')) as { control?: string }).control;
  } catch (err) {
    throw InputError.single(`cannot read ${file}: ${(err as Error).message}`, `start the lab first (\`alb-rollout lab up --state-dir ${args.labDir}\`) and pass the same DIR to --lab`);
  }
  if (!control || !/^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(control)) {
    throw InputError.single(`${file} has no loopback control endpoint`, 'restart the lab with this version of `alb-rollout lab up`');
  }
  if (args.spec !== undefined) parseFaultSpec(args.spec); // bad input fails here, before anything is sent
  const answer = await controlRequest(control, args.spec);
  if (answer.status !== 200) {
    const e = answer.body as { error?: string; fix?: string };
    throw InputError.single(e.error ?? `the lab answered ${answer.status}`, e.fix ?? 'see the lab process output');
  }
  const { faults, spec } = answer.body as { faults: LabFaults; spec: string };
  const lost = faults.lostPods?.length ? `pods gone with their node: ${faults.lostPods.join(', ')}\n` : '';
  io.stdout(args.format === 'json' ? `${JSON.stringify({ faults, spec })}\n` : `faults in force: ${spec}\n${lost}`);
  return 0;
}

function controlRequest(base: string, spec: string | undefined): Promise<{ status: number; body: unknown }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(`${base}/faults`, { method: spec === undefined ? 'GET' : 'POST', agent: false, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolvePromise({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          resolvePromise({ status: res.statusCode ?? 0, body: { error: `unreadable answer from the lab: ${text.slice(0, 200)}` } });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) =>
      reject(InputError.single(`the lab's control endpoint ${base} did not answer: ${err.message}`, 'is `alb-rollout lab up` still running for this --lab DIR? start it again if not')),
    );
    req.end(spec);
  });
}
