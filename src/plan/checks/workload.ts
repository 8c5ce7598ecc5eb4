import type { JsonObject, KubeObject } from '../../manifests/types.js';
import { endpointPorts, readyAddresses, targetOf } from './endpoints.js';
import type { BindingInfo, CheckResult, TargetView } from './result.js';
import { controllerRevisionNumber, REVISION_ANNOTATION, revisionOf, rolloutStatusOf } from './rollout-status.js';

/**
 * The checks of a workload wait, on one snapshot: kubectl's rollout rule, the readiness gates of the new pods,
 * their targets healthy, no old target draining, registered targets = ready endpoints. Pure; the runner
 * (rollout/workload.ts) keeps the snapshot current and re-checks on every change.
 */

export const GATE_PREFIX = 'target-health.elbv2.k8s.aws/';

export interface WorkloadWatchView {
  /** Deployment (default), StatefulSet or DaemonSet: which rollout rule applies and how new pods are told apart. */
  kind?: WaitedKind;
  namespace: string;
  name: string;
  selector: string;
  bindings: BindingInfo[];
  /** Pods that existed before this run applied the workload: they may predate the TargetGroupBinding (no gate). */
  oldPodUids: Set<string>;
  oldPodIps: Set<string>;
  /** The gate condition types new pods must carry (none with --readiness-gates off). */
  expectedGates: string[];
  /** The target group's health check, for hints. */
  healthCheck?: { path: string; successCodes: string };
}

export type WaitedKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface WorkloadSnapshot {
  workload: KubeObject | undefined;
  /** A Deployment's ReplicaSets. */
  replicaSets: KubeObject[];
  /** A StatefulSet's or DaemonSet's ControllerRevisions. */
  controllerRevisions?: KubeObject[];
  pods: KubeObject[];
  slices: KubeObject[];
  /** Target group ARN → the last DescribeTargetHealth answer. */
  health: Map<string, TargetView[]>;
  /** The last DescribeTargetHealth failure (retried). */
  awsError?: string;
}

export interface WorkloadView {
  result: CheckResult;
  revision?: number;
  /** Pods of the new revision (not terminating). */
  newPods: KubeObject[];
}

export function podIp(p: KubeObject): string | undefined {
  const ip = (p.status as JsonObject | undefined)?.podIP;
  return typeof ip === 'string' && ip !== '' ? ip : undefined;
}

export function conditionStatus(p: KubeObject, type: string): string | undefined {
  const conditions = ((p.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[];
  const c = conditions.find((x) => x.type === type);
  return c ? String(c.status) : undefined;
}

/**
 * The revision of the workload and the label that marks its pods: a Deployment's newest ReplicaSet
 * (pod-template-hash); a StatefulSet's update revision (controller-revision-hash = the ControllerRevision's name);
 * a DaemonSet's newest ControllerRevision (controller-revision-hash = that revision's hash label).
 */
export function newRevisionOf(kind: WaitedKind, d: KubeObject, snap: Pick<WorkloadSnapshot, 'replicaSets' | 'controllerRevisions'>): { revision?: number; label: string; value?: string } {
  if (kind === 'Deployment') {
    const revision = revisionOf(d);
    const newRs = snap.replicaSets.find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === String(revision) && ownedBy(rs, d));
    const value = newRs?.metadata.labels?.['pod-template-hash'];
    return { ...(revision !== undefined ? { revision } : {}), label: 'pod-template-hash', ...(value !== undefined ? { value } : {}) };
  }
  const owned = (snap.controllerRevisions ?? []).filter((cr) => ownedBy(cr, d));
  if (kind === 'StatefulSet') {
    const name = ((d.status ?? {}) as JsonObject).updateRevision;
    const cr = owned.find((x) => x.metadata.name === name);
    return { ...(cr ? { revision: controllerRevisionNumber(cr) } : {}), label: 'controller-revision-hash', ...(typeof name === 'string' && name !== '' ? { value: name } : {}) };
  }
  const newest = owned.reduce<KubeObject | undefined>((m, cr) => (!m || controllerRevisionNumber(cr) > controllerRevisionNumber(m) ? cr : m), undefined);
  const value = newest?.metadata.labels?.['controller-revision-hash'];
  return { ...(newest ? { revision: controllerRevisionNumber(newest) } : {}), label: 'controller-revision-hash', ...(value !== undefined ? { value } : {}) };
}

/** The rollout, gates, targets and drain of one Deployment, StatefulSet or DaemonSet, as of this snapshot. */
export function checkDeployment(w: WorkloadWatchView, snap: WorkloadSnapshot): WorkloadView {
  const ns = w.namespace;
  const kind = w.kind ?? 'Deployment';
  const d = snap.workload;
  if (!d) return { newPods: [], result: { done: false, message: `${kind} ${ns}/${w.name} not seen yet` } };
  const { revision, label, value } = newRevisionOf(kind, d, snap);
  const status = rolloutStatusOf(kind, d);
  // Until the Deployment controller has observed the spec just written, its revision annotation (and so the "new"
  // ReplicaSet) is still the previous one: after a rollback that is the failed release, whose crash-looping pods
  // would be judged as the rollback's own. A real controller takes a moment to observe; nothing is judged before.
  if (kind === 'Deployment' && Number(d.metadata.generation ?? 0) > Number(((d.status ?? {}) as JsonObject).observedGeneration ?? 0)) {
    return { newPods: [], result: { done: false, message: status.message } };
  }
  const newPods = snap.pods.filter((p) => value !== undefined && p.metadata.labels?.[label] === value && !p.metadata.deletionTimestamp);
  const view = (result: CheckResult): WorkloadView => ({ result, newPods, ...(revision !== undefined ? { revision } : {}) });
  // Pods created by this run (after the TargetGroupBinding existed) must carry the gate; older pods of the same
  // template (a scale-up without a template change) were announced before the rollout.
  const gateFailure = missingGateFailure(kind.toLowerCase(), ns, w.name, newPods.filter((x) => !w.oldPodUids.has(String(x.metadata.uid ?? ''))), w.expectedGates);
  if (gateFailure) return view(gateFailure);
  const diag = diagnoseWorkload(newPods, w.bindings, snap.health, w.expectedGates, snap.slices);
  const hints = (): string => workloadHints(diag, w);
  if (diag.crashLooping.length > 0) {
    const head = `expected the new pods of ${kind} ${ns}/${w.name} to start, but ${diag.crashLooping.length} crash-loop (CrashLoopBackOff after ${CRASH_LOOP_RESTARTS}+ restarts): ${diag.crashLooping.slice(0, 3).join(', ')}. The release cannot start; waiting for the progress deadline would not change that.`;
    return view({ done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail}\n${hints()}` });
  }
  if (!status.done && status.failed) {
    const cond = ((((d.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]).find((c) => c.type === 'Progressing') ?? {}) as JsonObject;
    const deadline = Number((d.spec as JsonObject | undefined)?.progressDeadlineSeconds ?? 600);
    const head =
      `expected Deployment ${ns}/${w.name} to progress, but Kubernetes reports ProgressDeadlineExceeded: ${String(cond.message ?? status.message)} ` +
      `(no progress for progressDeadlineSeconds=${deadline}s).`;
    return view({ done: false, failed: true, message: `${head} ${diag.oneLine}`, detail: `${head}\n${diag.detail || '  (no new pod seen)'}\n${hints()}` });
  }
  const pending: string[] = [];
  if (!status.done) pending.push(status.message);
  if (snap.awsError) pending.push(`DescribeTargetHealth failing, retrying: ${snap.awsError}`);
  // Target groups: registered = ready endpoints once the rollout is done.
  const mismatch = status.done ? targetMismatches(w.bindings, snap.slices, snap.health) : [];
  const done = pending.length === 0 && diag.pending === 0 && mismatch.length === 0;
  const message = [...pending, diag.oneLine, ...mismatch].filter(Boolean).join('; ');
  const detail = [pending.length > 0 ? `  rollout: ${pending.join('; ')}` : '', diag.detail, ...mismatch.map((m) => `  ${m}`)].filter(Boolean).join('\n');
  return view({ done, message: truncate(message, 600), detail: `\n${detail}`, hint: hints() });
}

/**
 * Pods created by this run (after the TargetGroupBinding existed) must carry the gate: one created without it was
 * admitted while the LBC's pod webhook did not run, and old pods could go before the new targets are healthy.
 */
export function missingGateFailure(kind: string, ns: string, name: string, pods: KubeObject[], expectedGates: string[]): CheckResult | undefined {
  for (const p of pods) {
    const gates = (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => String(g.conditionType));
    const missing = expectedGates.filter((g) => !gates.includes(g));
    if (missing.length === 0) continue;
    return {
      done: false,
      failed: true,
      message: `expected every new pod to carry the readiness gate ${missing.join(', ')}, but new pod ${ns}/${p.metadata.name} was created without it: the AWS Load Balancer Controller's pod webhook (mpod.elbv2.k8s.aws) did not run — it admits pods ungated when the controller is down (failurePolicy Ignore). Old pods could be removed before the new targets are healthy, so the run stops here. Fix: check the controller (kubectl -n kube-system get pods -l app.kubernetes.io/name=aws-load-balancer-controller; kubectl get mutatingwebhookconfigurations), then re-run; \`kubectl rollout restart ${kind}/${name} -n ${ns}\` recreates the pods with gates.`,
    };
  }
  return undefined;
}

/** Once the rollout is done, each target group's registered targets are exactly the ready endpoints of its Service. */
export function targetMismatches(bindings: BindingInfo[], slices: KubeObject[], health: Map<string, TargetView[]>): string[] {
  const readyEndpoints = readyEndpointIps(slices, bindings);
  const mismatch: string[] = [];
  for (const b of bindings) {
    const targets = health.get(b.arn);
    if (!targets) continue;
    const registered = new Set(targets.filter((t) => t.state !== 'draining' && t.state !== 'unused').map((t) => t.id));
    const endpoints = readyEndpoints.get(b.route.service.name) ?? new Set<string>();
    const extra = [...registered].filter((ip) => !endpoints.has(ip));
    const missing = [...endpoints].filter((ip) => !registered.has(ip));
    if (extra.length > 0 || missing.length > 0) mismatch.push(`${b.name} targets ≠ ready endpoints (extra: ${extra.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'})`);
  }
  return mismatch;
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
/** `slices`: the Services' EndpointSlices, for the pods' target ports (without them a pod's IP on any port). */
export function diagnoseWorkload(newPods: KubeObject[], bindings: BindingInfo[], health: Map<string, TargetView[]>, expectedGates: string[], slices: KubeObject[] = []): WorkloadDiagnosis {
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
      // The last exit's message (e.g. the listen error of a server that cannot start) is what the on-call person needs.
      const lastMessage = last && typeof last.message === 'string' && last.message !== '' ? ` "${truncate(last.message, 200)}"` : '';
      const history = `${restarts > 0 ? `, ${restarts} restart(s)` : ''}${last ? `, last exit code ${String(last.exitCode ?? '?')}${last.reason ? ` (${String(last.reason)})` : ''}${lastMessage}` : ''}`;
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
    const ports = endpointPorts(slices, b.route.service.name);
    for (const p of newPods) {
      const ip = podIp(p);
      const t = targetOf(targets, ip, ip === undefined ? undefined : ports.get(ip));
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
function workloadHints(diag: WorkloadDiagnosis, w: WorkloadWatchView): string {
  const ns = w.namespace;
  const out: string[] = [];
  const hc = w.healthCheck;
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
      `. The old pods keep serving; to go back: kubectl rollout undo ${(w.kind ?? 'Deployment').toLowerCase()}/${w.name} -n ${ns}.`,
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
