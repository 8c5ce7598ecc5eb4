import type { TargetHealth } from '../aws/elbv2.js';
import { UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { readyAddresses } from '../kube/endpoints.js';
import { Informer } from '../kube/informer.js';
import { deploymentRolloutStatus, REVISION_ANNOTATION, revisionOf } from '../kube/rollout-status.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import type { Preflight } from '../plan/index.js';
import type { Timeline } from '../report/timeline.js';
import { GuardTripped } from './guarding.js';
import { GATE_PREFIX, type BindingInfo, type DeployDeps, type DeployOptions, type RunState, type WorkloadWatch } from './types.js';
import { waitUntil, type CheckResult } from './wait.js';

/**
 * Phase 4's wait for one Deployment (also used after a rollback): kubectl's rollout rule, the readiness gates of the
 * new pods, their targets healthy, no old target draining, registered targets = ready endpoints. Kubernetes is
 * watched; target health is described when a state can change. Failures say which pods/targets and why.
 */

/**
 * While an informer has not listed yet: which, and the last error (retried with backoff; the wait's deadline still
 * applies). Errors that retrying cannot fix (a kind the cluster does not serve, RBAC) end the wait at once.
 */
export function unsyncedMessage(informers: Informer[]): string | undefined {
  const unsynced = informers.filter((i) => !i.isSynced);
  if (unsynced.length === 0) return undefined;
  for (const i of unsynced) {
    const e = i.lastError;
    if (e instanceof KubeApiError && (e.code === 401 || e.code === 403 || e.code === 404)) {
      throw new KubeApiError(e.code, e.status, `expected to list ${i.describe()}, but the API server answers ${e.code}: ${e.message}`);
    }
  }
  const errs = unsynced.filter((i) => i.lastError).map((i) => `${i.describe()}: ${i.lastError?.message ?? ''}`);
  return `first list of ${unsynced.map((i) => i.describe()).join(', ')}${errs.length > 0 ? ` (retrying after: ${errs[0]})` : ''}`;
}

/** AWS/controller errors that go away by themselves: LBC requeues the Ingress with backoff. */

export function podIp(p: KubeObject): string | undefined {
  const ip = (p.status as JsonObject | undefined)?.podIP;
  return typeof ip === 'string' && ip !== '' ? ip : undefined;
}

export function conditionStatus(p: KubeObject, type: string): string | undefined {
  const conditions = ((p.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[];
  const c = conditions.find((x) => x.type === type);
  return c ? String(c.status) : undefined;
}

export async function waitForWorkload(w: WorkloadWatch, pre: Preflight, options: DeployOptions, deps: DeployDeps, tl: Timeline, state: RunState): Promise<void> {
  const ns = w.namespace;
  const deployments = new Informer(deps.kube, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: ns, fieldSelector: `metadata.name=${w.name}` });
  const replicaSets = new Informer(deps.kube, { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: ns, labelSelector: w.selector });
  const pods = new Informer(deps.kube, { apiVersion: 'v1', kind: 'Pod', namespace: ns, labelSelector: w.selector });
  const slices = new Informer(deps.kube, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: ns });
  const informers = [deployments, replicaSets, pods, slices];
  informers.forEach((i) => i.start());
  const health = new Map<string, TargetHealth[]>();
  const seenStates = new Map<string, string>();
  const seenPods = new Map<string, string>();
  const gated = options.readinessGates !== 'off';
  const expectedGates = gated ? w.bindings.filter((b) => b.targetType === 'ip').map((b) => `${GATE_PREFIX}${b.name}`) : [];
  let awsListeners: Array<() => void> = [];
  const awsChanged = (): void => awsListeners.forEach((l) => l());
  const stopAws = new AbortController();
  const scale = options.timeScale;
  let nextDescribeAt = 0;
  let awsError: Error | undefined;
  let wakeDescribe: (() => void) | undefined;
  // Describe target health when a state can change: right after a pod change (registration follows
  // endpoints), at the health-check interval while targets are initial/unhealthy, and when a drain can end.
  const describeLoop = (async () => {
    const intervalMs = Math.max(50, (15_000 / scale) / 3);
    while (!stopAws.signal.aborted) {
      const wait = Math.max(0, nextDescribeAt - deps.now());
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(wait || intervalMs, intervalMs));
        wakeDescribe = () => {
          clearTimeout(timer);
          r();
        };
      });
      wakeDescribe = undefined;
      if (stopAws.signal.aborted) break;
      try {
        for (const b of w.bindings) {
          const targets = await deps.elbv2.targetHealth(b.arn, stopAws.signal);
          health.set(b.arn, targets);
          for (const t of targets) {
            const k = `${b.arn}|${t.id}:${t.port}`;
            if (seenStates.get(k) !== t.state) {
              seenStates.set(k, t.state);
              tl.add('target-state', `target ${t.id}:${t.port} ${t.state}${t.reason ? ` (${t.reason})` : ''}`, { targetGroup: b.name, target: `${t.id}:${t.port}`, state: t.state, reason: t.reason ?? null });
            }
          }
        }
        awsError = undefined;
        nextDescribeAt = deps.now() + intervalMs;
        awsChanged();
      } catch (err) {
        if (stopAws.signal.aborted) break;
        awsError = err as Error;
        deps.log.warn(`DescribeTargetHealth failed, retrying: ${(err as Error).message}`);
        awsChanged();
        if (err instanceof UnreachableError) break;
      }
    }
  })();
  const offPods = pods.onChange(() => {
    nextDescribeAt = Math.min(nextDescribeAt, deps.now() + 50);
  });
  const stopWaiting = (): void => {
    stopAws.abort();
    wakeDescribe?.();
  };
  try {
    const check = (): CheckResult => {
      if (awsError instanceof UnreachableError) throw awsError;
      const unsynced = unsyncedMessage(informers);
      if (unsynced) return { done: false, message: unsynced };
      const d = deployments.list()[0];
      if (!d) return { done: false, message: `Deployment ${ns}/${w.name} not seen yet` };
      const revision = revisionOf(d);
      if (revision !== undefined) state.revisions.set(`${ns}/${w.name}`, revision);
      const status = deploymentRolloutStatus(d);
      const newRs = replicaSets.list().find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === String(revision) && ownedBy(rs, d));
      const hash = newRs?.metadata.labels?.['pod-template-hash'];
      const newPods = pods.list().filter((p) => hash !== undefined && p.metadata.labels?.['pod-template-hash'] === hash && !p.metadata.deletionTimestamp);
      const tripped = state.rollingBack ? undefined : state.guard?.tripped();
      if (tripped) throw new GuardTripped(tripped);
      if (!state.rollingBack) for (const p of newPods) if (podIp(p)) state.newPodIps.add(podIp(p) as string);
      for (const p of pods.list()) {
        const ready = conditionStatus(p, 'Ready') ?? 'Unknown';
        const sig = `${p.metadata.deletionTimestamp ? 'terminating' : 'live'}|${ready}`;
        if (seenPods.get(p.metadata.name) !== sig) {
          const first = !seenPods.has(p.metadata.name);
          seenPods.set(p.metadata.name, sig);
          if (p.metadata.deletionTimestamp) tl.add('pod-deleted', `pod ${p.metadata.name} terminating`, { pod: p.metadata.name });
          else if (first && !w.oldPodIps.has(podIp(p) ?? '')) tl.add('pod-created', `pod ${p.metadata.name} created`, { pod: p.metadata.name });
          if (ready === 'True' && !p.metadata.deletionTimestamp) tl.add('pod-ready', `pod ${p.metadata.name} Ready`, { pod: p.metadata.name, ip: podIp(p) ?? null });
        }
      }
      // Pods created by this run (after the TargetGroupBinding existed) must carry the gate; older pods of the same
      // template (a scale-up without a template change) were announced by warnUnprotectedOldPods.
      for (const p of newPods.filter((x) => !w.oldPodUids.has(String(x.metadata.uid ?? '')))) {
        const gates = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
        const missing = expectedGates.filter((g) => !gates.includes(g));
        if (missing.length > 0) {
          return {
            done: false,
            failed: true,
            message: `expected every new pod to carry the readiness gate ${missing.join(', ')}, but new pod ${ns}/${p.metadata.name} was created without it: the AWS Load Balancer Controller's pod webhook (mpod.elbv2.k8s.aws) did not run — it admits pods ungated when the controller is down (failurePolicy Ignore). Old pods could be removed before the new targets are healthy, so the run stops here. Fix: check the controller (kubectl -n kube-system get pods -l app.kubernetes.io/name=aws-load-balancer-controller; kubectl get mutatingwebhookconfigurations), then re-run; \`kubectl rollout restart deployment/${w.name} -n ${ns}\` recreates the pods with gates.`,
          };
        }
      }
      const diag = diagnoseWorkload(newPods, w.bindings, health, expectedGates);
      const hints = (): string => workloadHints(diag, w, pre, ns);
      if (diag.crashLooping.length > 0) {
        const head = `expected the new pods of Deployment ${ns}/${w.name} to start, but ${diag.crashLooping.length} crash-loop (CrashLoopBackOff after ${CRASH_LOOP_RESTARTS}+ restarts): ${diag.crashLooping.slice(0, 3).join(', ')}. The release cannot start; waiting for the progress deadline would not change that.`;
        return { done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail}\n${hints()}` };
      }
      if (!status.done && status.failed) {
        const cond = ((((d.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]).find((c) => c.type === 'Progressing') ?? {}) as JsonObject;
        const deadline = Number((d.spec as JsonObject | undefined)?.progressDeadlineSeconds ?? 600);
        const head =
          `expected Deployment ${ns}/${w.name} to progress, but Kubernetes reports ProgressDeadlineExceeded: ${String(cond.message ?? status.message)} ` +
          `(no progress for progressDeadlineSeconds=${deadline}s).`;
        return { done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail || '  (no new pod seen)'}\n${hints()}` };
      }
      const pending: string[] = [];
      if (!status.done) pending.push(status.message);
      if (awsError) pending.push(`DescribeTargetHealth failing, retrying: ${awsError.message}`);
      // Target groups: registered = ready endpoints once the rollout is done.
      const readyEndpoints = readyEndpointIps(slices.list(), w.bindings);
      const mismatch: string[] = [];
      for (const b of w.bindings) {
        const targets = health.get(b.arn);
        if (!targets) continue;
        const registered = new Set(targets.filter((t) => t.state !== 'draining' && t.state !== 'unused').map((t) => t.id));
        const endpoints = readyEndpoints.get(b.route.service.name) ?? new Set<string>();
        const extra = [...registered].filter((ip) => !endpoints.has(ip));
        const missing = [...endpoints].filter((ip) => !registered.has(ip));
        if (status.done && (extra.length > 0 || missing.length > 0)) {
          mismatch.push(`${b.name} targets ≠ ready endpoints (extra: ${extra.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'})`);
        }
      }
      const done = pending.length === 0 && diag.pending === 0 && mismatch.length === 0;
      const message = [...pending, diag.oneLine, ...mismatch].filter(Boolean).join('; ');
      const detail = [pending.length > 0 ? `  rollout: ${pending.join('; ')}` : '', diag.detail, ...mismatch.map((m) => `  ${m}`)].filter(Boolean).join('\n');
      return { done, message: truncate(message, 600), detail: `\n${detail}`, hint: hints() };
    };
    await waitUntil(check, {
      what: `rolling out Deployment ${ns}/${w.name}`,
      deadlineMs: options.timeouts.rolloutSeconds * 1000,
      recheckMs: 1000,
      log: deps.log,
      now: deps.now,
      subscribe: (fn) => {
        const offs = informers.map((i) => i.onChange(fn));
        state.guard?.onTrip(fn);
        awsListeners.push(fn);
        return () => {
          offs.forEach((o) => o());
          awsListeners = awsListeners.filter((l) => l !== fn);
        };
      },
    });
    deps.log.info(`Deployment ${ns}/${w.name} rolled out: revision ${state.revisions.get(`${ns}/${w.name}`) ?? '?'}, all new targets healthy, no target draining`);
  } finally {
    offPods();
    stopWaiting();
    await describeLoop;
    await Promise.all(informers.map((i) => i.stop()));
  }
}

interface WorkloadDiagnosis {
  /** How many things (pods, targets) are not where they must be. */
  pending: number;
  /** One line for progress output. */
  oneLine: string;
  /** Several lines for the final error. */
  detail: string;
  /** Container waiting/terminated reasons seen (CrashLoopBackOff, ImagePullBackOff…). */
  podReasons: Set<string>;
  /** AWS target-health reason codes seen on new or old targets (Target.ResponseCodeMismatch…). */
  targetReasons: Set<string>;
  /** Pods named in the diagnosis, for the hints (kubectl logs …). */
  failingPods: string[];
  /** New pods whose containers crash-loop (CrashLoopBackOff after several restarts): the release cannot start. */
  crashLooping: string[];
}

/** Restarts after which a crash-looping new pod fails the rollout at once rather than at the progress deadline. */
const CRASH_LOOP_RESTARTS = 3;

/** Why each new pod and each target is not done yet, grouped by reason so that five identical pods make one line. */
function diagnoseWorkload(newPods: KubeObject[], bindings: BindingInfo[], health: Map<string, TargetHealth[]>, expectedGates: string[]): WorkloadDiagnosis {
  const podGroups = new Map<string, string[]>();
  const podReasons = new Set<string>();
  const targetReasons = new Set<string>();
  const failingPods: string[] = [];
  const crashLooping: string[] = [];
  let pending = 0;
  const addPod = (why: string, p: KubeObject): void => {
    pending++;
    failingPods.push(p.metadata.name);
    podGroups.set(why, [...(podGroups.get(why) ?? []), `${p.metadata.name} (${podIp(p) ?? 'no IP yet'})`]);
  };
  const containersReady = new Set<string>();
  for (const p of newPods) {
    const status = (p.status ?? {}) as JsonObject;
    const statuses = (status.containerStatuses ?? []) as JsonObject[];
    const problems: string[] = [];
    if (statuses.length === 0) problems.push(`not started yet (phase ${String(status.phase ?? 'Pending')})`);
    for (const c of statuses) {
      const st = (c.state ?? {}) as JsonObject;
      const waiting = st.waiting as JsonObject | undefined;
      const terminated = st.terminated as JsonObject | undefined;
      const last = ((c.lastState ?? {}) as JsonObject).terminated as JsonObject | undefined;
      const restarts = Number(c.restartCount ?? 0);
      const history = `${restarts > 0 ? `, ${restarts} restart(s)` : ''}${last ? `, last exit code ${String(last.exitCode ?? '?')}${last.reason ? ` (${String(last.reason)})` : ''}` : ''}`;
      if (waiting) {
        const reason = String(waiting.reason ?? 'Waiting');
        podReasons.add(reason);
        if (reason === 'CrashLoopBackOff' && restarts >= CRASH_LOOP_RESTARTS && !crashLooping.includes(p.metadata.name)) crashLooping.push(p.metadata.name);
        // The kubelet's message often names the pod ("back-off 10s restarting failed container=… pod=…"): leave those out so identical pods group.
        const note = typeof waiting.message === 'string' && !waiting.message.includes(p.metadata.name) ? `: ${waiting.message}` : '';
        problems.push(`container ${String(c.name)} ${reason}${history}${note}`);
      } else if (terminated) {
        podReasons.add(String(terminated.reason ?? 'Terminated'));
        problems.push(`container ${String(c.name)} terminated (${String(terminated.reason ?? '?')}, exit code ${String(terminated.exitCode ?? '?')})${history}`);
      } else if (c.ready !== true) {
        podReasons.add('ReadinessProbeFailing');
        problems.push(`container ${String(c.name)} running but not ready (readinessProbe not passing yet)${history}`);
      }
    }
    if (problems.length > 0) addPod(problems.join('; '), p);
    else containersReady.add(p.metadata.name);
  }
  const targetLines: string[] = [];
  for (const b of bindings) {
    const targets = health.get(b.arn);
    if (!targets) {
      if (newPods.length > 0) {
        pending++;
        targetLines.push(`  target group ${b.name}: first DescribeTargetHealth pending`);
      }
      continue;
    }
    const groups = new Map<string, string[]>();
    const add = (key: string, what: string): void => {
      pending++;
      groups.set(key, [...(groups.get(key) ?? []), what]);
    };
    for (const p of newPods) {
      const ip = podIp(p);
      const t = targets.find((x) => x.id === ip);
      if (!t) {
        // The controller registers a pod only once its containers are ready; the pod line above says why not.
        if (containersReady.has(p.metadata.name)) add('not registered yet (the controller registers ready endpoints)', `${p.metadata.name} (${ip ?? 'no IP yet'})`);
        continue;
      }
      if (t.state === 'healthy') continue;
      if (t.reason) targetReasons.add(t.reason);
      add(`${t.state}${t.reason ? ` (${t.reason}${t.description ? `: ${t.description}` : ''})` : ''}`, `${t.id}:${t.port}`);
    }
    const draining = targets.filter((t) => t.state === 'draining');
    if (draining.length > 0) for (const t of draining) add('draining (old targets; the deregistration delay has not passed)', `${t.id}:${t.port}`);
    for (const [why, list] of groups) targetLines.push(`  target group ${b.name}: ${list.length} target(s) ${why}: ${list.slice(0, 8).join(', ')}${list.length > 8 ? `, +${list.length - 8} more` : ''}`);
  }
  // Pods whose containers are ready and whose targets are healthy may still wait for the gate condition to flip.
  for (const p of newPods) {
    if (!containersReady.has(p.metadata.name)) continue;
    const carried = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
    const notTrue = expectedGates.filter((g) => carried.includes(g) && conditionStatus(p, g) !== 'True');
    if (notTrue.length > 0 && targetLines.length === 0) addPod(`readiness gate ${notTrue.map((g) => g.slice(GATE_PREFIX.length)).join(', ')} not True yet`, p);
  }
  const podLines = [...podGroups].map(([why, list]) => `  ${list.length} new pod(s) not ready — ${why}: ${list.slice(0, 6).join(', ')}${list.length > 6 ? `, +${list.length - 6} more` : ''}`);
  const detail = [...podLines, ...targetLines].join('\n');
  return { pending, oneLine: detail.split('\n').map((l) => l.trim()).filter(Boolean).join('; '), detail, podReasons, targetReasons, failingPods, crashLooping };
}

/** What to do, for what the diagnosis saw. */
function workloadHints(diag: WorkloadDiagnosis, w: WorkloadWatch, pre: Preflight, ns: string): string {
  const out: string[] = [];
  const tgModels = pre.model.targetGroups.filter((tg) => w.bindings.some((b) => b.route.service.namespace === tg.service.namespace && b.route.service.name === tg.service.name));
  const hc = tgModels[0]?.healthCheck;
  if (diag.targetReasons.has('Target.ResponseCodeMismatch')) {
    out.push(
      `Target.ResponseCodeMismatch: the ALB health check${hc ? ` (path ${hc.path}, success codes ${hc.successCodes})` : ''} gets a status code its matcher does not accept, although the readinessProbe may pass. ` +
        'Fix: point alb.ingress.kubernetes.io/healthcheck-path at a path the app answers with a success code, or set alb.ingress.kubernetes.io/success-codes.',
    );
  }
  if (diag.targetReasons.has('Target.Timeout') || diag.targetReasons.has('Target.FailedHealthChecks')) {
    out.push('Target.Timeout/FailedHealthChecks: the ALB cannot reach the pod on the health-check port. Fix: check the pod security groups and the alb.ingress.kubernetes.io/healthcheck-port annotation.');
  }
  if (diag.targetReasons.has('Target.NotInUse') || diag.targetReasons.has('Target.NotRegistered')) {
    out.push('Target.NotInUse: the target group is not attached to a listener rule of the ALB, so targets never turn healthy (LBC issue #3753). Fix: check the Ingress rules and the controller events.');
  }
  const crash = ['CrashLoopBackOff', 'Error', 'OOMKilled', 'RunContainerError', 'CreateContainerError'].some((r) => diag.podReasons.has(r));
  if (crash) out.push(`The new pods crash: read why with \`kubectl logs -n ${ns} ${diag.failingPods[0] ?? '<pod>'} --previous\`; fix the image or its configuration.`);
  if (diag.podReasons.has('ImagePullBackOff') || diag.podReasons.has('ErrImagePull')) out.push('The image cannot be pulled: check the image name and tag and the registry credentials (imagePullSecrets).');
  if (diag.podReasons.has('ReadinessProbeFailing')) out.push('A readinessProbe does not pass: check its path/port against the app (kubectl describe pod shows the probe failures).');
  out.push(
    `Inspect: kubectl describe pods -n ${ns} -l ${w.selector}` +
      (w.bindings[0]?.arn ? `; aws elbv2 describe-target-health --target-group-arn ${w.bindings[0].arn}` : '') +
      `. The old pods keep serving; to go back: kubectl rollout undo deployment/${w.name} -n ${ns}.`,
  );
  return out.join('\n');
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function ownedBy(child: KubeObject, owner: KubeObject): boolean {
  const refs = (child.metadata.ownerReferences ?? []) as JsonObject[];
  return refs.some((r) => r.uid === owner.metadata.uid);
}

export function readyEndpointIps(slices: KubeObject[], bindings: BindingInfo[]): Map<string, Set<string>> {
  return new Map(bindings.map((b) => [b.route.service.name, readyAddresses(slices, b.route.service.name)]));
}
