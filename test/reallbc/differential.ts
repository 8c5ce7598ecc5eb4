/**
 * One scenario, observed as data on a lab, so that the LBC emulation and the real AWS Load Balancer Controller
 * can be compared field by field (test/reallbc/differential.test.ts, docs/real-lbc.md).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import type { TargetEvent } from '../../src/lab/alb/cloud.js';
import { waitFor } from '../helpers/wait.js';
import { root, type E2eLab } from '../e2e/helpers.js';

const NS = 'game-2048';
const GATE_PREFIX = 'target-health.elbv2.k8s.aws/';

export interface PodObservation {
  /** The readiness gates in the pod's spec (names with the TGB hash replaced by `<hash>`). */
  gates: string[];
  /** Every distinct (status, reason, message) of its gate condition, in order. */
  gateSequence: string[];
  /** Its IP's first registration in the target group came before the pod was Ready. */
  registeredBeforeReady: boolean;
  /** Not compared (timing): ms from registration to Ready as observed, or why it could not be measured. */
  timing: string;
}

export interface Observation {
  tgb: { name: string; labels: string[]; finalizers: string[]; spec: Record<string, string> };
  pods: PodObservation[];
  /** `Kind type reason: message` of the Ingress's and TargetGroupBinding's events. */
  events: string[];
  /** The first target state after the pod's deletion (`draining`), or `none` when nothing changed within the deadline. */
  deletedPodTarget: string;
  /** After the Ingress's deletion: what was gone within the deadline. */
  teardown: { tgbDeleted: boolean; loadBalancerDeleted: boolean };
  /** Not compared: what was left when the teardown deadline passed. */
  leftover: string;
  /** Ingress status ports. */
  ingressStatusPorts: string;
}

export interface Difference {
  field: string;
  emulated: unknown;
  real: unknown;
}

const shape = (s: string): string => s.replace(/[0-9a-f]{10}\b/g, '<hash>').replace(/\b(sg|vpc)-[0-9a-f]+/g, '$1-<id>').replace(/arn:aws:[^\s"]+/g, '<arn>');

function flatten(prefix: string, v: unknown, out: Record<string, string>): void {
  if (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object')) {
    v.forEach((x, i) => flatten(`${prefix}[${i}]`, x, out));
  } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as JsonObject)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else out[prefix] = shape(JSON.stringify(v) ?? 'null');
}

function ready(pod: KubeObject): boolean {
  const conds = ((pod.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[];
  return conds.some((c) => c.type === 'Ready' && c.status === 'True');
}

function podIp(pod: KubeObject): string | undefined {
  const ip = (pod.status as JsonObject | undefined)?.podIP;
  return typeof ip === 'string' ? ip : undefined;
}

function gateCondition(pod: KubeObject): JsonObject | undefined {
  const conds = ((pod.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[];
  return conds.find((c) => typeof c.type === 'string' && c.type.startsWith(GATE_PREFIX));
}

/** Runs the scenario on `l` (a fresh lab with either LBC): Ingress first, then 2 pods, one deleted, then the Ingress. */
export async function observe(l: E2eLab): Promise<Observation> {
  const { lab } = l;
  const apply = async (file: string): Promise<void> => {
    const r = await l.kubectl(['apply', '-f', file]);
    if (r.code !== 0) throw new Error(`kubectl apply -f ${file}: ${r.stderr}`);
  };
  const example = join(root, 'examples', '2048', 'safe');
  for (const f of ['1-namespace.yaml', '2-service.yaml', '3-ingress.yaml']) await apply(join(example, f));
  await waitFor(() => lab.store.list('TargetGroupBinding', NS).items[0], { timeoutMs: 60_000, what: 'the TargetGroupBinding of ingress-2048' });

  // Record from here: gate conditions (polled from the lab's watch-fed cache), Ready, and target registrations.
  const firstRegistered = new Map<string, number>();
  const afterDelete: TargetEvent[] = [];
  const unsubscribe = lab.alb.onTargetEvent((e) => {
    if (e.kind === 'state' && !firstRegistered.has(e.id)) firstRegistered.set(e.id, e.at);
    afterDelete.push(e);
  });
  const sequences = new Map<string, string[]>();
  const readyAt = new Map<string, number>();
  const poll = setInterval(() => {
    for (const p of lab.store.list('Pod', NS).items) {
      const c = gateCondition(p);
      const seq = sequences.get(p.metadata.name) ?? [];
      const entry = c ? `${String(c.status)} ${String(c.reason ?? '')} ${String(c.message ?? '')}`.trim() : 'absent';
      if (seq[seq.length - 1] !== entry) seq.push(entry);
      sequences.set(p.metadata.name, seq);
      if (ready(p) && !readyAt.has(p.metadata.name)) readyAt.set(p.metadata.name, Date.now());
    }
  }, 20);
  try {
    const deployment = (await readFile(join(example, '4-deployment.yaml'), 'utf8')).replace(/replicas: \d+/, 'replicas: 2');
    const file = join(l.dir, 'deployment-2.yaml');
    await writeFile(file, deployment);
    await apply(file);
    const pods = await waitFor(
      () => {
        const ps = lab.store.list('Pod', NS).items.filter((p) => p.metadata.deletionTimestamp === undefined);
        for (const p of ps) if (ready(p) && !readyAt.has(p.metadata.name)) readyAt.set(p.metadata.name, Date.now());
        return ps.length === 2 && ps.every((p) => ready(p) && gateCondition(p)?.status === 'True') ? ps : undefined;
      },
      { timeoutMs: 120_000, what: 'two pods Ready with their gates True' },
    );
    // The TGB once the controller has reconciled it (finalizer, spec defaults).
    const tgbObj = lab.store.list('TargetGroupBinding', NS).items[0] as KubeObject;
    const podObs = pods.map((p): PodObservation => {
      const ip = podIp(p) ?? '';
      const reg = firstRegistered.get(ip);
      const at = readyAt.get(p.metadata.name);
      return {
        gates: (((p.spec as JsonObject).readinessGates ?? []) as JsonObject[]).map((g) => shape(String(g.conditionType))),
        gateSequence: sequences.get(p.metadata.name) ?? [],
        registeredBeforeReady: reg !== undefined && at !== undefined && reg < at,
        timing: reg === undefined ? `no registration of ${ip} seen` : at === undefined ? 'Ready not seen' : `${at - reg} ms`,
      };
    });

    const victim = pods[0] as KubeObject;
    const victimIp = podIp(victim) ?? '';
    afterDelete.length = 0;
    const del = await l.kubectl(['delete', 'pod', '-n', NS, victim.metadata.name, '--wait=false']);
    if (del.code !== 0) throw new Error(`kubectl delete pod: ${del.stderr}`);
    const deregistered = await waitFor(() => afterDelete.find((e) => e.id === victimIp && e.kind === 'state'), { timeoutMs: 30_000, what: `target ${victimIp} leaving the target group` }).catch(() => undefined);

    const events = lab.store
      .list('Event', NS)
      .items.filter((e) => ['Ingress', 'TargetGroupBinding'].includes(String(((e as JsonObject).involvedObject as JsonObject | undefined)?.kind)))
      .map((e) => {
        const x = e as JsonObject;
        return `${String((x.involvedObject as JsonObject).kind)} ${String(x.type)} ${String(x.reason)}: ${String(x.message)}`;
      });
    const ing = lab.store.get('Ingress', NS, 'ingress-2048');
    const ports = (((ing?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.ports;

    const delIng = await l.kubectl(['delete', 'ingress', '-n', NS, 'ingress-2048', '--wait=false']);
    if (delIng.code !== 0) throw new Error(`kubectl delete ingress: ${delIng.stderr}`);
    const gone = async (check: () => boolean): Promise<boolean> =>
      waitFor(() => check() || undefined, { timeoutMs: 60_000, what: 'teardown' }).then(
        () => true,
        () => false,
      );
    const tgbDeleted = await gone(() => lab.store.list('TargetGroupBinding', NS).items.length === 0);
    const loadBalancerDeleted = await gone(() => lab.alb.loadBalancerSummaries().length === 0);
    const leftover = JSON.stringify({
      ingress: lab.store.get('Ingress', NS, 'ingress-2048')?.metadata ?? null,
      tgbs: lab.store.list('TargetGroupBinding', NS).items.map((t) => t.metadata),
      loadBalancers: lab.alb.loadBalancerSummaries().map((x) => x.name),
    });

    const spec: Record<string, string> = {};
    flatten('', tgbObj.spec, spec);
    return {
      tgb: {
        name: shape(tgbObj.metadata.name),
        labels: Object.keys(tgbObj.metadata.labels ?? {}).sort(),
        finalizers: [...((tgbObj.metadata as { finalizers?: string[] }).finalizers ?? [])].sort(),
        spec,
      },
      pods: podObs,
      events: [...new Set(events)].sort(),
      deletedPodTarget: deregistered ? deregistered.state : 'none',
      teardown: { tgbDeleted, loadBalancerDeleted },
      leftover,
      ingressStatusPorts: JSON.stringify(ports ?? null),
    };
  } finally {
    clearInterval(poll);
    unsubscribe();
  }
}

/** Every field where the two observations differ (flattened paths). */
export function differences(emulated: Observation, real: Observation): Difference[] {
  const a: Record<string, string> = {};
  const b: Record<string, string> = {};
  const untimed = ({ leftover: _l, ...o }: Observation): JsonObject => ({ ...o, pods: o.pods.map(({ timing: _t, ...p }) => p) }) as unknown as JsonObject;
  flatten('', untimed(emulated), a);
  flatten('', untimed(real), b);
  const out: Difference[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (a[k] !== b[k]) out.push({ field: k, emulated: a[k] === undefined ? undefined : (JSON.parse(a[k]) as unknown), real: b[k] === undefined ? undefined : (JSON.parse(b[k]) as unknown) });
  }
  return out;
}
