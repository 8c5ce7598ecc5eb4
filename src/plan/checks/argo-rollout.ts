import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { BindingInfo, CheckResult, TargetView } from './result.js';
import { diagnoseWorkload, targetMismatches, truncate } from './workload.js';

/**
 * The wait for an Argo Rollout, on one snapshot. Argo owns the rollout: its phase (Healthy, Progressing, Paused,
 * Degraded), computed by the controller into status.phase/status.message, is what is waited on, read the way the
 * kubectl plugin reads it (a phase is only believed once status.observedGeneration — a string — equals
 * metadata.generation, and not while the controller still holds a pause nobody lists any more). On top of that the
 * same gate and target rules as for a Deployment, for the pods of the Rollout's current pod hash. Pure.
 */

export type ArgoPhase = 'Healthy' | 'Progressing' | 'Paused' | 'Degraded';

/** How the Rollout routes: the Services Argo points at the new and the stable pods. */
export interface ArgoServices {
  strategy: 'Canary' | 'BlueGreen';
  /** canaryService (canary) or previewService (blue-green): the Service of the new pods while the rollout runs. */
  newService?: string;
  /** stableService (canary) or activeService (blue-green). */
  stableService?: string;
  /** Canary with trafficRouting.alb: the Ingress(es) whose actions annotation Argo writes, and the Service port. */
  alb?: { ingresses: string[]; servicePort?: number; rootService?: string };
}

export function argoServices(ro: JsonObject): ArgoServices {
  const strategy = obj(obj(ro.spec).strategy);
  if (strategy.blueGreen !== undefined) {
    const bg = obj(strategy.blueGreen);
    return { strategy: 'BlueGreen', ...strField('newService', bg.previewService), ...strField('stableService', bg.activeService) };
  }
  const canary = obj(strategy.canary);
  const alb = obj(obj(canary.trafficRouting).alb);
  const ingresses = [...new Set([alb.ingress, ...(Array.isArray(alb.ingresses) ? alb.ingresses : [])].filter((n): n is string => typeof n === 'string'))];
  return {
    strategy: 'Canary',
    ...strField('newService', canary.canaryService),
    ...strField('stableService', canary.stableService),
    ...(ingresses.length > 0
      ? { alb: { ingresses, ...(typeof alb.servicePort === 'number' ? { servicePort: alb.servicePort } : {}), ...(typeof alb.rootService === 'string' ? { rootService: alb.rootService } : {}) } }
      : {}),
  };
}

/** A canary step as `kubectl argo rollouts get` names it: `setWeight: 20`, `pause`, `pause: 30s`, `analysis`… */
export function canaryStepString(step: unknown): string {
  const s = obj(step);
  if (s.setWeight !== undefined) return `setWeight: ${String(s.setWeight)}`;
  if (s.pause !== undefined) {
    const d = obj(s.pause).duration;
    return d === undefined ? 'pause' : `pause: ${typeof d === 'number' ? `${d}s` : String(d)}`;
  }
  for (const k of ['experiment', 'analysis', 'setCanaryScale', 'setHeaderRoute', 'setMirrorRoute', 'plugin']) if (s[k] !== undefined) return k;
  return 'invalid';
}

export interface ArgoRolloutState {
  phase: ArgoPhase;
  message: string;
  strategy: 'Canary' | 'BlueGreen';
  /** The controller has observed the spec just written (status.observedGeneration = metadata.generation). */
  observed: boolean;
  currentPodHash?: string;
  stableRS?: string;
  /** Canary: status.currentStepIndex (0-based; = steps.length once every step is done) and the steps. */
  stepIndex?: number;
  steps: string[];
  /** Canary with traffic routing: the weights Argo set (status.canary.weights). */
  weights?: { canary: number; stable: number; verified?: boolean };
  aborted: boolean;
  /** Why it is paused, and whether the pause ends by itself (a timed pause step, autoPromotionSeconds). */
  pause?: { reason: string; endsByItself: boolean };
  /** The analysis of the current step (status.canary.currentStepAnalysisRunStatus) or blue-green's. */
  analysis?: { name: string; status: string; message?: string };
  replicas: { desired: number; updated: number; ready: number; available: number };
}

/** The Rollout's state as the kubectl plugin computes it (rolloututil.GetRolloutPhase), with what a person needs to act. */
export function argoRolloutState(ro: KubeObject): ArgoRolloutState {
  const spec = obj(ro.spec);
  const status = obj(ro.status);
  const services = argoServices(ro);
  const steps = services.strategy === 'Canary' ? arr(obj(obj(spec.strategy).canary).steps).map(canaryStepString) : [];
  const stepIndex = typeof status.currentStepIndex === 'number' ? status.currentStepIndex : undefined;
  const pauseConditions = arr(status.pauseConditions).map(obj);
  const canary = obj(status.canary);
  const w = canary.weights === undefined ? undefined : obj(canary.weights);
  const analysisStatus = obj(services.strategy === 'Canary' ? canary.currentStepAnalysisRunStatus : (obj(status.blueGreen).prePromotionAnalysisRunStatus ?? obj(status.blueGreen).postPromotionAnalysisRunStatus));
  const base = {
    strategy: services.strategy,
    steps,
    ...(stepIndex !== undefined ? { stepIndex } : {}),
    ...(typeof status.currentPodHash === 'string' && status.currentPodHash !== '' ? { currentPodHash: status.currentPodHash } : {}),
    ...(typeof status.stableRS === 'string' && status.stableRS !== '' ? { stableRS: status.stableRS } : {}),
    ...(w
      ? { weights: { canary: Number(obj(w.canary).weight ?? 0), stable: Number(obj(w.stable).weight ?? 0), ...(typeof w.verified === 'boolean' ? { verified: w.verified } : {}) } }
      : {}),
    aborted: status.abort === true,
    ...(typeof analysisStatus.name === 'string'
      ? { analysis: { name: analysisStatus.name, status: String(analysisStatus.status ?? ''), ...(typeof analysisStatus.message === 'string' && analysisStatus.message !== '' ? { message: analysisStatus.message } : {}) } }
      : {}),
    replicas: {
      desired: spec.replicas === undefined ? 1 : Number(spec.replicas),
      updated: Number(status.updatedReplicas ?? 0),
      ready: Number(status.readyReplicas ?? 0),
      available: Number(status.availableReplicas ?? 0),
    },
  };
  // status.observedGeneration is a string in Argo (a hash before v0.10); a number that differs is a spec not yet seen.
  const observedRaw = status.observedGeneration;
  const observedNumber = typeof observedRaw === 'string' && /^\d+$/.test(observedRaw) ? Number(observedRaw) : typeof observedRaw === 'number' ? observedRaw : undefined;
  const generation = Number(ro.metadata.generation ?? 0);
  if (observedRaw === undefined || (observedNumber !== undefined && observedNumber < generation)) {
    return { ...base, observed: false, phase: 'Progressing', message: 'waiting for rollout spec update to be observed' };
  }
  if (status.controllerPause === true && pauseConditions.length === 0) {
    return { ...base, observed: true, phase: 'Progressing', message: 'waiting for rollout to unpause' };
  }
  let phase = typeof status.phase === 'string' && ['Healthy', 'Progressing', 'Paused', 'Degraded'].includes(status.phase) ? (status.phase as ArgoPhase) : undefined;
  let message = typeof status.message === 'string' ? status.message : '';
  if (!phase) {
    // Argo 1.0+ always writes the phase; without one the controller has not reconciled yet.
    phase = 'Progressing';
    message = 'the Argo Rollouts controller has not written status.phase yet';
  }
  const out: ArgoRolloutState = { ...base, observed: true, phase, message };
  if (phase === 'Paused') {
    const reason = spec.paused === true ? 'manually paused (spec.paused)' : String(pauseConditions[0]?.reason ?? message);
    out.pause = { reason, endsByItself: pauseEndsByItself(spec, reason, stepIndex) };
  }
  return out;
}

/** A timed pause step, or blue-green with autoPromotionSeconds, resumes without anyone; `pause: {}`, a manual pause or an inconclusive analysis does not. */
function pauseEndsByItself(spec: JsonObject, reason: string, stepIndex: number | undefined): boolean {
  const strategy = obj(spec.strategy);
  if (reason === 'CanaryPauseStep' && stepIndex !== undefined) {
    const step = obj(arr(obj(strategy.canary).steps)[stepIndex]);
    return obj(step.pause).duration !== undefined;
  }
  if (reason === 'BlueGreenPause') return obj(strategy.blueGreen).autoPromotionSeconds !== undefined;
  return false;
}

/** `step 2/3 (analysis), weight canary 20% / stable 80%, 1 of 2 updated pods available`. */
export function describeProgress(st: ArgoRolloutState): string {
  const parts: string[] = [];
  if (st.strategy === 'Canary' && st.steps.length > 0 && st.stepIndex !== undefined) {
    parts.push(st.stepIndex >= st.steps.length ? `all ${st.steps.length} steps done` : `step ${st.stepIndex + 1}/${st.steps.length} (${st.steps[st.stepIndex]})`);
  }
  if (st.weights) parts.push(`weight canary ${st.weights.canary}% / stable ${st.weights.stable}%${st.weights.verified === false ? ' (not yet verified on the ALB)' : ''}`);
  if (st.analysis) parts.push(`analysis ${st.analysis.name} ${st.analysis.status || 'Pending'}`);
  parts.push(`${st.replicas.available} pod(s) available (${st.replicas.desired} desired, ${st.replicas.updated} of the new version)`);
  return parts.join(', ');
}

export interface ArgoWatchView {
  namespace: string;
  name: string;
  selector: string;
  /** Pods that existed before this run applied the Rollout. */
  oldPodUids: Set<string>;
  /** Services whose target groups must exist and hold the new pods (Argo's Services, and those the routes name). */
  services: string[];
  /** `end` (default): a pause nobody but a person ends (`pause: {}`, blue-green awaiting promotion) ends the wait; `wait`: wait through it. */
  pauses: 'end' | 'wait';
  /** --readiness-gates off: no gate expected. */
  gates: boolean;
  /** The Rollout's pod hash before this run changed its template: a status still naming it is the previous release's. */
  staleHash?: string;
}

export interface ArgoSnapshot {
  rollout: KubeObject | undefined;
  pods: KubeObject[];
  slices: KubeObject[];
  /** TargetGroupBindings of the namespace (those of `services` are the Rollout's). */
  bindings: KubeObject[];
  health: Map<string, TargetView[]>;
  awsError?: string;
}

export type ArgoOutcome = 'healthy' | 'paused' | 'pending' | 'failed';

export interface ArgoView {
  outcome: ArgoOutcome;
  result: CheckResult;
  state?: ArgoRolloutState;
  /** Pods of the current pod hash (not terminating). */
  newPods: KubeObject[];
  /** The TargetGroupBindings found for the Rollout's Services. */
  bindings: BindingInfo[];
}

export const POD_HASH_LABEL = 'rollouts-pod-template-hash';

/** The TargetGroupBindings of the Rollout's Services (ARN known), as the checks read them. */
export function argoBindings(tgbs: KubeObject[], namespace: string, services: string[]): BindingInfo[] {
  const out: BindingInfo[] = [];
  for (const b of tgbs) {
    const spec = obj(b.spec);
    const ref = obj(spec.serviceRef);
    const service = String(ref.name ?? '');
    const arn = typeof spec.targetGroupARN === 'string' ? spec.targetGroupARN : '';
    if (!services.includes(service) || arn === '') continue;
    const targetType = String(spec.targetType ?? 'ip');
    out.push({ route: { service: { namespace, name: service }, port: (ref.port as string | number | undefined) ?? '', targetType, from: 'cluster' }, name: b.metadata.name, arn, targetType });
  }
  return out;
}

/** What to run, for the person on call. */
function commands(ns: string, name: string): { get: string; promote: string; full: string; abort: string; undo: string; retry: string } {
  const n = `${name} -n ${ns}`;
  return {
    get: `kubectl argo rollouts get rollout ${n}`,
    promote: `kubectl argo rollouts promote ${n}`,
    full: `kubectl argo rollouts promote ${n} --full`,
    abort: `kubectl argo rollouts abort ${n}`,
    undo: `kubectl argo rollouts undo ${n}`,
    retry: `kubectl argo rollouts retry rollout ${n}`,
  };
}

/** The Rollout, its new pods' gates and targets, as of this snapshot. */
export function checkArgoRollout(w: ArgoWatchView, snap: ArgoSnapshot): ArgoView {
  const id = `Rollout ${w.namespace}/${w.name}`;
  const cmd = commands(w.namespace, w.name);
  const bindings = argoBindings(snap.bindings, w.namespace, w.services);
  const ro = snap.rollout;
  if (!ro) return { outcome: 'pending', newPods: [], bindings, result: { done: false, message: `${id} not seen yet` } };
  const st = argoRolloutState(ro);
  const view = (outcome: ArgoOutcome, result: CheckResult, newPods: KubeObject[] = []): ArgoView => ({ outcome, result, state: st, newPods, bindings });
  if (!st.observed) return view('pending', { done: false, message: `${id}: ${st.message}` });
  // Argo writes observedGeneration on its first pass over a new template, before it has moved to its new ReplicaSet.
  if (w.staleHash !== undefined && st.currentPodHash === w.staleHash) {
    return view('pending', { done: false, message: `${id}: waiting for Argo to start the new template (status.currentPodHash is still the previous release's ${w.staleHash}; ${st.phase}${st.message ? `: ${st.message}` : ''})` });
  }
  const newPods = st.currentPodHash === undefined ? [] : snap.pods.filter((p) => p.metadata.labels?.[POD_HASH_LABEL] === st.currentPodHash && !p.metadata.deletionTimestamp);
  const progress = describeProgress(st);
  if (st.phase === 'Degraded') {
    const analysis = st.analysis && st.analysis.status !== 'Successful' ? ` The step's AnalysisRun ${st.analysis.name} is ${st.analysis.status}${st.analysis.message ? `: ${st.analysis.message}` : ''} (kubectl get analysisrun ${st.analysis.name} -n ${w.namespace} -o yaml).` : '';
    const aborted = st.aborted
      ? `Argo aborted the update: traffic is back on the stable ReplicaSet${st.stableRS ? ` (${st.stableRS})` : ''} and the canary is scaled down; spec.template still holds the new version.`
      : 'The Rollout is not making progress.';
    const head = `expected ${id} to become Healthy, but Argo Rollouts reports Degraded: ${st.message || '(no message)'}. ${aborted}${analysis}`;
    // The new pods' own state (a crash, a failing probe) helps; their targets do not: Argo has moved the traffic.
    const diag = diagnoseWorkload(newPods, [], snap.health, []);
    const hint = `See why: ${cmd.get}. Fix the release and deploy again (a new template starts a new rollout), retry this one with \`${cmd.retry}\`, or go back to the stable version's template with \`${cmd.undo}\`.`;
    return view(
      'failed',
      {
        done: false,
        failed: true,
        message: head,
        detail: `${head}${diag.detail ? `\n${diag.detail}` : ''}\n  (${progress})\n${hint}`,
        hint,
      },
      newPods,
    );
  }
  const expectedGates = w.gates ? bindings.filter((b) => b.targetType === 'ip').map((b) => `target-health.elbv2.k8s.aws/${b.name}`) : [];
  // The LBC webhook adds a gate only to a pod its Service selects when the pod is created, and Argo points the canary
  // and stable Services at a ReplicaSet (rollouts-pod-template-hash) only after its pods exist: a Rollout's new pods
  // may carry no gate. Gates they carry must be True; their targets' health is judged either way.
  const gatedPods = (g: string): boolean => newPods.some((p) => arr(obj(p.spec).readinessGates).some((r) => obj(r).conditionType === g));
  const diag = diagnoseWorkload(newPods, bindings, snap.health, expectedGates.filter(gatedPods), snap.slices);
  if (diag.crashLooping.length > 0) {
    const head = `expected the new pods of ${id} to start, but ${diag.crashLooping.length} crash-loop (CrashLoopBackOff after several restarts): ${diag.crashLooping.slice(0, 3).join(', ')}. The release cannot start; Argo would only mark it Degraded at its progress deadline.`;
    const hint = `Read why: kubectl logs -n ${w.namespace} ${diag.crashLooping[0] ?? '<pod>'} --previous; ${cmd.get}.`;
    return view('failed', { done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail}\n  (${progress})\n${hint}`, hint }, newPods);
  }
  const missingTgb = w.services.filter((s) => !bindings.some((b) => b.route.service.name === s));
  const pending: string[] = [];
  if (snap.awsError) pending.push(`DescribeTargetHealth failing, retrying: ${snap.awsError}`);
  if (st.phase === 'Paused' && !(w.pauses === 'wait' || st.pause?.endsByItself)) {
    // The wait ends at this pause: the new pods behind the new version's Service must be healthy first.
    const newSvc = argoServices(ro).newService;
    const judged = bindings.filter((b) => b.route.service.name === newSvc);
    // Old targets still draining out of the canary's target group do not hold the pause (they are on their way out).
    const live = new Map([...snap.health].map(([arn, ts]) => [arn, ts.filter((t) => t.state !== 'draining')]));
    const d = diagnoseWorkload(newPods, judged, live, expectedGates.filter(gatedPods), snap.slices);
    const drainless = d.detail.split('\n').filter((l) => l.trim() !== '');
    const at = pausedAt(st);
    if (drainless.length === 0 && pending.length === 0) {
      const checked = judged.length > 0 ? `its ${newPods.length} new pod(s) healthy in the target group(s) of ${newSvc}` : `no target group checked (${newSvc ? `no TargetGroupBinding for ${newSvc}` : 'no canaryService/previewService'})`;
      return view('paused', {
        done: true,
        message:
          `${id} is Paused ${at} (${st.pause?.reason ?? st.message}), ${checked}; ${progress}. deploy ends here: the rest of the rollout is Argo's. ` +
          `Continue with \`${cmd.promote}\` (next step) or \`${cmd.full}\` (skip the remaining steps), or stop with \`${cmd.abort}\`. To have deploy wait through pauses: --argo-pauses wait.`,
      }, newPods);
    }
    return view('pending', { done: false, message: truncate(`${id} Paused ${at}; before deploy ends there: ${[...pending, ...drainless.map((l) => l.trim())].join('; ')}`, 600) }, newPods);
  }
  if (st.phase !== 'Healthy') {
    const why = st.phase === 'Paused' ? `Paused ${pausedAt(st)} (${st.pause?.reason ?? ''}${st.pause?.endsByItself ? ', resumes by itself' : ', waiting for someone to promote: ' + cmd.promote})` : `${st.phase}${st.message ? `: ${st.message}` : ''}`;
    return view('pending', {
      done: false,
      message: truncate([`${id} ${why}`, progress, ...pending, diag.oneLine].filter(Boolean).join('; '), 600),
      detail: `\n  ${id} ${why}; ${progress}${diag.detail ? `\n${diag.detail}` : ''}`,
      hint: `See the rollout: ${cmd.get}.`,
    }, newPods);
  }
  // Healthy: every Service of the Rollout now selects the new pods; the same target rules as for a Deployment.
  if (missingTgb.length > 0) pending.push(`no TargetGroupBinding with a target group ARN yet for Service(s) ${missingTgb.join(', ')}`);
  const mismatch = targetMismatches(bindings, snap.slices, snap.health);
  const done = pending.length === 0 && diag.pending === 0 && mismatch.length === 0;
  const message = done
    ? `${id} Healthy: ${newPods.length} pod(s) of ${st.currentPodHash ?? '?'} serving, every new target healthy in ${bindings.map((b) => b.name).join(', ') || 'no target group'}, no target draining`
    : truncate([`${id} Healthy; ${progress}`, ...pending, diag.oneLine, ...mismatch].filter(Boolean).join('; '), 600);
  return view(done ? 'healthy' : 'pending', { done, message, detail: `\n${[...pending.map((p) => `  ${p}`), diag.detail, ...mismatch.map((m) => `  ${m}`)].filter(Boolean).join('\n')}`, hint: `See the rollout: ${cmd.get}; the target groups: aws elbv2 describe-target-health --target-group-arn ${bindings[0]?.arn ?? '<arn>'}.` }, newPods);
}

/** `at step 2/3 (pause)` or `before promotion` (blue-green). */
export function pausedAt(st: ArgoRolloutState): string {
  if (st.strategy === 'BlueGreen') return 'before promotion (the preview Service has the new version, the active one the old)';
  if (st.stepIndex !== undefined && st.stepIndex < st.steps.length) return `at step ${st.stepIndex + 1}/${st.steps.length} (${st.steps[st.stepIndex]})`;
  return 'at no canary step';
}

/**
 * Argo points a Rollout's canary/stable (preview/active) Service at one ReplicaSet by adding
 * rollouts-pod-template-hash to its selector — an atomic map, so Argo's update owns all of it and a server-side apply
 * of the manifest's selector conflicts (and, forced, would undo Argo's traffic split). When the live selector is the
 * manifest's plus only that key, the selector is Argo's to keep: the Service is applied without it.
 */
export function selectorIsArgos(manifest: KubeObject, live: KubeObject | undefined): boolean {
  const want = obj(obj(manifest.spec).selector);
  const have = { ...obj(obj(live?.spec).selector) };
  if (typeof have[POD_HASH_LABEL] !== 'string') return false;
  delete have[POD_HASH_LABEL];
  const keys = Object.keys(want);
  return keys.length === Object.keys(have).length && keys.every((k) => have[k] === want[k]);
}

/** The Services a set's Rollouts name (canaryService, stableService, previewService, activeService), as "ns/name". */
export function argoManagedServices(rollouts: KubeObject[]): Set<string> {
  const out = new Set<string>();
  for (const ro of rollouts) {
    const s = argoServices(ro);
    for (const name of [s.newService, s.stableService]) if (name) out.add(`${ro.metadata.namespace ?? ''}/${name}`);
  }
  return out;
}

/** The manifest of a Service whose selector Argo keeps, without spec.selector. */
export function withoutSelector(manifest: KubeObject): KubeObject {
  const spec = { ...obj(manifest.spec) };
  delete spec.selector;
  return { ...manifest, spec };
}

/**
 * The header route the canary's steps have set by now (`setHeaderRoute` with `match`, not yet removed by one
 * without): Argo's ALB traffic routing sends requests carrying those headers to the canary Service only, so a
 * probe sending them judges the canary alone instead of at its weight. Exact values only (what Argo's ALB router
 * writes into the condition); undefined when none is active.
 */
export function activeHeaderRoute(ro: KubeObject): { name: string; headers: Record<string, string> } | undefined {
  const steps = arr(obj(obj(obj(ro.spec).strategy).canary).steps).map(obj);
  const index = obj(ro.status).currentStepIndex;
  const upTo = typeof index === 'number' ? Math.min(index, steps.length) : 0;
  const routes = new Map<string, Record<string, string>>();
  for (const step of steps.slice(0, upTo)) {
    if (step.setHeaderRoute === undefined) continue;
    const route = obj(step.setHeaderRoute);
    const name = typeof route.name === 'string' ? route.name : '';
    const match = arr(route.match).map(obj);
    if (match.length === 0) {
      routes.delete(name);
      continue;
    }
    const headers: Record<string, string> = {};
    for (const m of match) {
      const exact = obj(m.headerValue).exact;
      if (typeof m.headerName === 'string' && typeof exact === 'string' && !(m.headerName.toLowerCase() in headers)) headers[m.headerName.toLowerCase()] = exact;
    }
    if (Object.keys(headers).length > 0) routes.set(name, headers);
  }
  const first = [...routes][0];
  return first ? { name: first[0], headers: first[1] } : undefined;
}

/** The merge patch `kubectl argo rollouts abort` sends (to the status subresource, else the object). */
export const ABORT_PATCH = { status: { abort: true } } as const;

function obj(v: unknown): JsonObject {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function strField<K extends string>(key: K, v: unknown): Partial<Record<K, string>> {
  return typeof v === 'string' && v !== '' ? ({ [key]: v } as Record<K, string>) : {};
}
