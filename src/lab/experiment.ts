import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Elbv2Reader } from '../aws/elbv2.js';
import { ExitCode } from '../errors.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { deploymentRolloutStatus } from '../plan/checks/rollout-status.js';
import { loadManifests } from '../manifests/load.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import { parseOptions } from '../options.js';
import { preflight } from '../preflight/index.js';
import { silentLogger, type Logger } from '../report/log.js';
import { runDeploy } from '../rollout/deploy.js';
import { startLab, type ControlPlaneTier, type Lab } from './index.js';
import { writeRelease, type ManifestEdit } from './variants.js';
import type { LabTimings, TimingProfile } from './timing.js';
import { TrafficGenerator, summarize, type TrafficSummary } from './traffic/index.js';

/**
 * The seed article's experiment: the 2048 game (5 replicas) under a steady request loop through the ALB while
 * its image is rolled — once naive (plain apply, everything at once, no gate label, no preStop, AWS's default
 * deregistration delay), once safe (examples/2048/safe through `deploy`: the article's recommendations, in order).
 */

export type ScenarioName = 'naive' | 'safe';

export interface ScenarioTimelineEntry {
  /** World seconds (what AWS would take) since the scenario started. */
  t: number;
  /** Real seconds since the scenario started. */
  realT: number;
  event: string;
}

/** The lab's world (what AWS would take): real durations × timeScale, real rates ÷ timeScale. */
export interface WorldFigures {
  timeScale: number;
  timings: TimingProfile;
  seed: number;
  rolloutSeconds: number;
  longestErrorWindowSeconds: number;
  /** Requests per world second. */
  requestsPerSecond: number;
  /** safe only: `plan`'s rollout-time estimate for the released manifests (world seconds), to compare with rolloutSeconds. */
  planEstimateSeconds?: number;
  /** safe only: the deploy's `workloads` phase (world seconds): the rollout and drain that plan's estimate is about. */
  workloadsPhaseSeconds?: number;
  /** safe with `afterFailure`: the first deploy's error (it was re-run after `afterFailure`). */
  firstAttemptError?: string;
}

export interface ScenarioResult extends TrafficSummary {
  name: ScenarioName;
  /** Real seconds from the image change until the rollout is complete and the last old target has left the data plane. */
  rolloutSeconds: number;
  /** The same run in world time (`longestErrorWindowSeconds` and `rolloutSeconds` above are real seconds). */
  world: WorldFigures;
  timeline: ScenarioTimelineEntry[];
}

export interface ExperimentOptions {
  examplesDir: string;
  scenarios?: ScenarioName[];
  ratePerSecond?: number;
  /** At least this many requests per scenario (the loop keeps running after the rollout until reached). */
  minRequests?: number;
  profile?: TimingProfile;
  /** Seed of each scenario's lab (the same for naive and safe). */
  seed?: number;
  timings?: Partial<LabTimings>;
  log?: Logger;
  /** The lab's own log lines (controllers, kubelet, LBC), for replaying a failing seed. */
  labLog?: (line: string) => void;
  /** The control plane under the lab (default embedded); real needs the built binary; realLbc runs the real controller on it. */
  controlPlane?: { tier: ControlPlaneTier; binary?: string; realLbc?: { binary: string; moduleDir: string } };
  /** Edits applied to the example's manifests before the install (and kept in the release): the campaign's variations. */
  edit?: ManifestEdit;
  /** Rollout deadline in real seconds (default 120). */
  rolloutTimeoutSeconds?: number;
  /**
   * Runs alongside the update (started with it, not awaited before it): the fault campaign injects faults here.
   * `retry` (default false): when the safe update fails, run `afterFailure` (e.g. clear the faults) and deploy again.
   */
  duringUpdate?: (lab: Lab) => Promise<void>;
  afterFailure?: (lab: Lab) => Promise<void>;
}

const NEW_IMAGE_TAG = 'v2';
const NAMESPACE = 'game-2048';
/** Restarts after which a crash-looping pod stops the scenario (it will not start by waiting longer). */
const CRASH_LOOP_RESTARTS = 2;

/** The experiment could not run to the end; the message says what was expected, what was seen and what to do. */
export class ExperimentError extends Error {
  readonly exitCode = ExitCode.failed;
  constructor(message: string) {
    super(message);
    this.name = 'ExperimentError';
  }
}

/** One scenario in a lab of its own (what `runExperiment` does per scenario; the bench campaign calls it per seed). */
export async function runScenarioInLab(name: ScenarioName, options: ExperimentOptions): Promise<ScenarioResult> {
  const lab = await startLab({
    ...(options.profile ? { profile: options.profile } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.timings ? { timings: options.timings } : {}),
    ...(options.labLog ? { log: options.labLog } : {}),
    ...(options.controlPlane ? { controlPlane: options.controlPlane.tier, ...(options.controlPlane.binary ? { binary: options.controlPlane.binary } : {}) } : {}),
    ...(options.controlPlane?.realLbc ? { lbc: 'real' as const, realLbc: options.controlPlane.realLbc } : {}),
  });
  try {
    return await runScenario(name, lab, options);
  } finally {
    await lab.stop();
  }
}

export async function runExperiment(options: ExperimentOptions): Promise<{ scenarios: ScenarioResult[] }> {
  const scenarios: ScenarioResult[] = [];
  for (const name of options.scenarios ?? (['naive', 'safe'] as const)) scenarios.push(await runScenarioInLab(name, options));
  return { scenarios };
}

async function runScenario(name: ScenarioName, lab: Lab, options: ExperimentOptions): Promise<ScenarioResult> {
  const log = options.log ?? silentLogger;
  const workDir = await mkdtemp(join(tmpdir(), `alb-rollout-experiment-${name}-`));
  const dir = options.edit ? await writeRelease(resolve(options.examplesDir, name), join(workDir, 'latest'), 'latest', options.edit) : resolve(options.examplesDir, name);
  const timelineStart = Date.now();
  const timeline: ScenarioTimelineEntry[] = [];
  const scale = lab.clock.timings.timeScale;
  const note = (event: string): void => {
    const real = (Date.now() - timelineStart) / 1000;
    timeline.push({ t: Math.round(real * scale * 10) / 10, realT: Math.round(real * 10) / 10, event });
    log.progress(`${name}: ${event}`);
  };
  const offPods = lab.kubelet.onPodEvent((e) => {
    if (['listening', 'prestop', 'sigterm', 'killed', 'removed'].includes(e.type)) note(`pod ${e.name} ${e.type}${e.ip ? ` (${e.ip})` : ''}`);
  });
  const offTargets = lab.alb.onTargetEvent((e) => {
    if (e.kind === 'state' || e.kind === 'drain-complete' || e.kind === 'data-plane') note(`target ${e.id}:${e.port} ${e.kind === 'state' ? e.state : `${e.kind} ${e.state}`}`);
  });
  const kubeconfig = join(workDir, 'kubeconfig');
  await lab.writeKubeconfig(kubeconfig);
  const kube = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }, {}));
  const elbv2 = new Elbv2Reader({
    region: lab.region,
    endpoint: lab.aws.elbv2Url,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    minRetryDelayMs: 50,
    maxRetryDelayMs: 500,
  });
  try {
    log.info(`${name}: installing ${dir}`);
    if (name === 'naive') await plainApply(kube, dir);
    else await deployWithTool(name, dir, kube, elbv2, lab, log);
    const url = await waitForAlbServing(name, lab, 60_000);
    await waitForSteadyState(name, kube, lab, 'deployment-2048', (options.rolloutTimeoutSeconds ?? 60) * 1000);
    note('steady: 5 pods serving v1 through the ALB');

    const traffic = new TrafficGenerator({
      url,
      ratePerSecond: options.ratePerSecond ?? 50,
      maxRequests: 20_000,
      maxDurationMs: 150_000,
      timeoutMs: 15_000,
    });
    traffic.start();
    await waitForRequests(traffic, 40, 10_000);
    const rollStarted = Date.now();
    note(`rolling the image to :${NEW_IMAGE_TAG}`);
    const updatedDir = await writeRelease(dir, join(workDir, NEW_IMAGE_TAG), NEW_IMAGE_TAG);
    let planEstimateSeconds: number | undefined;
    let workloadsPhaseSeconds: number | undefined;
    const rolloutMs = (options.rolloutTimeoutSeconds ?? 120) * 1000;
    const during = options.duringUpdate?.(lab);
    let firstAttemptError: string | undefined;
    if (name === 'naive') await plainApply(kube, updatedDir);
    else {
      let run: DeployFigures;
      try {
        run = await deployWithTool(name, updatedDir, kube, elbv2, lab, log, rolloutMs / 1000);
      } catch (e) {
        if (!options.afterFailure) throw e;
        firstAttemptError = (e as Error).message;
        await during;
        await options.afterFailure(lab);
        run = await deployWithTool(name, updatedDir, kube, elbv2, lab, log, rolloutMs / 1000);
      }
      planEstimateSeconds = run.planEstimateSeconds;
      workloadsPhaseSeconds = run.workloadsPhaseSeconds;
    }
    await during;
    await waitForSteadyState(name, kube, lab, 'deployment-2048', rolloutMs);
    const rolloutSeconds = Math.round((Date.now() - rollStarted) / 100) / 10;
    note(`rollout complete after ${Math.round(rolloutSeconds * scale)}s (${rolloutSeconds}s real)`);
    await waitForRequests(traffic, options.minRequests ?? 1000, 60_000);
    const summary = await traffic.stop();
    const world: WorldFigures = {
      timeScale: scale,
      timings: lab.clock.timings.profile ?? 'fast',
      seed: lab.clock.random.seed,
      rolloutSeconds: Math.round(rolloutSeconds * scale * 10) / 10,
      longestErrorWindowSeconds: Math.round(summary.longestErrorWindowSeconds * scale * 10) / 10,
      requestsPerSecond: Math.round(((options.ratePerSecond ?? 50) / scale) * 100) / 100,
      ...(planEstimateSeconds !== undefined ? { planEstimateSeconds } : {}),
      ...(workloadsPhaseSeconds !== undefined ? { workloadsPhaseSeconds } : {}),
      ...(firstAttemptError !== undefined ? { firstAttemptError } : {}),
    };
    return { name, ...summary, rolloutSeconds, world, timeline };
  } finally {
    offPods();
    offTargets();
    elbv2.destroy();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** What `kubectl apply -f DIR` does: every object at once (the Namespace first so the others can land). */
async function plainApply(kube: KubeClient, dir: string): Promise<void> {
  const set = await loadManifests({ paths: [dir], defaultNamespace: 'default', baseDir: dir });
  const ordered = [...set.objects].sort((a, b) => Number(b.ref.kind === 'Namespace') - Number(a.ref.kind === 'Namespace'));
  for (const o of ordered) await kube.apply(o.object, { force: true });
}

interface DeployFigures {
  /** plan's rollout-time estimate for the manifests (world seconds). */
  planEstimateSeconds?: number;
  /** How long the deploy's `workloads` phase took, in world seconds. */
  workloadsPhaseSeconds?: number;
}

/** `deploy --tune auto` of `dir`: plan's estimate for it and the measured workloads phase. */
async function deployWithTool(scenario: ScenarioName, dir: string, kube: KubeClient, elbv2: Elbv2Reader, lab: Lab, log: Logger, rolloutSeconds = 120): Promise<DeployFigures> {
  const options = parseOptions({ manifests: [dir], baseDir: dir, tune: 'auto' }, { tune: 'auto' }, []);
  const pre = await preflight(options, {});
  const result = await runDeploy(
    pre,
    { dryRun: false, forceConflicts: true, readinessGates: 'inject', timeouts: { routingSeconds: 60, rolloutSeconds }, timeScale: lab.clock.timings.timeScale },
    { kube, elbv2, log, now: Date.now },
  );
  if (result.result !== 'succeeded') throw new ExperimentError(`${scenario}: alb-rollout deploy of ${dir} ended ${result.result}: ${result.error ?? 'see the messages above'}`);
  const phase = result.phases.find((p) => p.name === 'workloads');
  const estimate = pre.plan.estimates[0]?.seconds;
  return {
    ...(estimate !== undefined ? { planEstimateSeconds: estimate } : {}),
    ...(phase?.durationSeconds !== undefined ? { workloadsPhaseSeconds: Math.round(phase.durationSeconds * lab.clock.timings.timeScale) } : {}),
  };
}

async function waitForAlbServing(scenario: ScenarioName, lab: Lab, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    failIfPodsCannotStart(scenario, lab, 'the ALB to serve 200');
    const alb = lab.albs()[0];
    if (alb) {
      const ok = await fetch(alb.url).then((r) => r.status === 200, () => false);
      if (ok) return alb.url;
    }
    if (Date.now() > deadline) {
      const seen = alb ? `it answered ${responsesText(alb.responses)}` : 'the Ingress has no ALB yet';
      throw new ExperimentError(
        `${scenario}: the ALB did not serve 200 within ${timeoutMs / 1000}s: ${seen}.\n${podStates(lab)}\n  fix: the lines above say which pods are not ready and why; a lab bug if they are all ready`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Rollout complete per kubectl's rule and no target of the load balancer left draining. */
async function waitForSteadyState(scenario: ScenarioName, kube: KubeClient, lab: Lab, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    failIfPodsCannotStart(scenario, lab, `deployment/${name} to roll out`);
    const d = await kube.get('apps/v1', 'Deployment', NAMESPACE, name);
    const status = d ? deploymentRolloutStatus(d) : { done: false, message: 'no deployment' };
    const draining = lab.alb.history.length > 0 ? drainingTargets(lab) : 0;
    if (status.done && draining === 0 && allPodsCurrent(d)) return;
    last = `${status.message}; ${draining} target(s) draining`;
    if (Date.now() > deadline) throw new ExperimentError(`${scenario}: deployment/${name} not rolled out and drained after ${timeoutMs / 1000}s: ${last}\n${podStates(lab)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function responsesText(responses: Record<string, number>): string {
  const parts = Object.entries(responses).map(([code, n]) => `${code}×${n}`);
  return parts.length > 0 ? parts.join(', ') : 'no requests yet';
}

/** Why one container of a pod is not running, from its status (waiting/terminated, restarts, last exit). */
function containerTrouble(c: JsonObject): { text: string; crashLooping: boolean } | undefined {
  const state = (c.state ?? {}) as JsonObject;
  const waiting = state.waiting as JsonObject | undefined;
  const terminated = state.terminated as JsonObject | undefined;
  const last = ((c.lastState ?? {}) as JsonObject).terminated as JsonObject | undefined;
  const restarts = Number(c.restartCount ?? 0);
  const now = waiting ? String(waiting.reason ?? 'Waiting') : terminated ? `terminated (${String(terminated.reason ?? '?')}, exit code ${String(terminated.exitCode ?? '?')})` : undefined;
  if (!now || now === 'ContainerCreating') return undefined;
  const lastText = last ? `; last exit code ${String(last.exitCode ?? '?')} (${String(last.reason ?? '?')})${last.message ? `: ${String(last.message)}` : ''}` : '';
  return { text: `container ${String(c.name)} ${now}, ${restarts} restart(s)${lastText}`, crashLooping: waiting?.reason === 'CrashLoopBackOff' && restarts >= CRASH_LOOP_RESTARTS };
}

/** The scenario's pods that are not running, one line per distinct problem. */
function podTroubles(lab: Lab): Array<{ text: string; pods: string[]; crashLooping: boolean }> {
  const byText = new Map<string, { text: string; pods: string[]; crashLooping: boolean }>();
  for (const p of lab.store.list('Pod', NAMESPACE).items) {
    if (p.metadata.deletionTimestamp) continue;
    for (const c of (((p.status ?? {}) as JsonObject).containerStatuses ?? []) as JsonObject[]) {
      const t = containerTrouble(c);
      if (!t) continue;
      const entry = byText.get(t.text) ?? { text: t.text, pods: [], crashLooping: false };
      entry.pods.push(p.metadata.name);
      entry.crashLooping ||= t.crashLooping;
      byText.set(t.text, entry);
    }
  }
  return [...byText.values()];
}

function podStates(lab: Lab): string {
  const troubles = podTroubles(lab);
  if (troubles.length === 0) return `  pods in ${NAMESPACE}: none failing`;
  return troubles.map((t) => `  ${t.pods.length} pod(s) (${t.pods.join(', ')}): ${t.text}`).join('\n');
}

/** A crash-looping pod will not start by waiting: stop at once and say why. */
function failIfPodsCannotStart(scenario: ScenarioName, lab: Lab, waitingFor: string): void {
  const looping = podTroubles(lab).filter((t) => t.crashLooping);
  if (looping.length === 0) return;
  const lines = looping.map((t) => `  ${t.pods.length} pod(s) in ${NAMESPACE} (${t.pods.join(', ')}): ${t.text}`);
  throw new ExperimentError(
    `${scenario}: waited for ${waitingFor}, but pods cannot start (CrashLoopBackOff):\n${lines.join('\n')}\n  fix: the containers' last exit message says why; change the manifests under the examples directory, or report a lab bug with this message`,
  );
}

function allPodsCurrent(d: KubeObject | undefined): boolean {
  const status = (d?.status ?? {}) as JsonObject;
  return Number(status.replicas ?? -1) === Number(status.updatedReplicas ?? -2);
}

function drainingTargets(lab: Lab): number {
  const latest = new Map<string, string>();
  for (const e of lab.alb.history) if (e.kind === 'state' || e.kind === 'removed') latest.set(`${e.tgArn}|${e.id}:${e.port}`, e.kind === 'removed' ? 'removed' : e.state);
  return [...latest.values()].filter((s) => s === 'draining').length;
}

async function waitForRequests(traffic: TrafficGenerator, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (traffic.records.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

export function renderExperimentText(result: { scenarios: ScenarioResult[] }): string {
  const codes = [...new Set(result.scenarios.flatMap((s) => Object.keys(s.responses)))].sort();
  const header = ['scenario', 'requests', ...codes, 'non-2xx', 'longest error window', 'rollout'];
  const rows = result.scenarios.map((s) => [
    s.name,
    String(s.requests),
    ...codes.map((c) => String(s.responses[c] ?? 0)),
    String(s.non2xx),
    `${s.world.longestErrorWindowSeconds}s (${s.longestErrorWindowSeconds}s real)`,
    `${s.world.rolloutSeconds}s (${s.rolloutSeconds}s real)`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return `${[line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`;
}

export { summarize };
