/**
 * The lab's kubelet: one node (`lab-node-1`), every pod a set of real HTTP servers reached through its own
 * virtual IP in 127.0.0.0/8 (see ../network.ts: each listener really is on 127.0.0.1 with an ephemeral port).
 *
 * Pod lifecycle (all delays in simulated seconds):
 *  - new pod → IP allocated, `spec.nodeName` set, status Pending with podIP, PodScheduled/Initialized True;
 *  - after `timings.containerStartSeconds` → containers running (phase Running); each server listens after its
 *    LAB_BEHAVIOR slow-start; readiness probes (httpGet/tcpSocket; exec/grpc pass) decide container readiness,
 *    no probe → ready once listening;
 *  - Ready = ContainersReady and every `spec.readinessGates[].conditionType` condition True (kubelet's rule and
 *    messages). Conditions written by others (the LBC's gate conditions) are never touched; Ready is recomputed
 *    whenever the pod changes;
 *  - deletion (deletionTimestamp) → preStop (sleep) while the server still serves → SIGTERM (LAB_BEHAVIOR) →
 *    SIGKILL at the grace period (counted from when the kubelet saw the deletion; if preStop used the whole grace
 *    period, the container still gets 2 s after SIGTERM, as kubelet's minimumGracePeriodInSeconds) → servers
 *    closed, IP released, final status, `store.removeNow`;
 *  - a container that exits on its own (LAB_BEHAVIOR=crash, a listen error) → restartCount, lastState
 *    terminated with reason and message, waiting CrashLoopBackOff, a Warning BackOff event.
 */
import type { KubeObject } from '../../manifests/types.js';
import {
  type Condition,
  type Obj,
  arrAt,
  conditions,
  isoNow,
  isoSeconds,
  numAt,
  objAt,
  strAt,
} from '../controllers/util.js';
import { EventRecorder } from '../controllers/events.js';
import type { ClusterAccess } from '../cluster.js';
import { LabNetwork, type PodNetwork } from '../network.js';
import type { StoreEvent } from '../store.js';
import type { LabRandom } from '../random.js';
import type { LabClock } from '../timing.js';
import { ContainerRunner, type ProcessSpec, type RestartPolicy } from './container.js';
import { type IpRange, IpAllocator, defaultIpRange } from './ip.js';

/** kubelet's minimumGracePeriodInSeconds: a container always gets this long between SIGTERM and SIGKILL. */
const MIN_GRACE_AFTER_PRESTOP_SECONDS = 2;
const OWN_CONDITIONS = new Set(['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']);

export interface KubeletOptions {
  /** Node name (default `lab-node-1`). */
  nodeName?: string;
  /** Create the Node object at start (default true); set false when the API server's registry has no Node kind. */
  registerNode?: boolean;
  /** Pod IPs (default 127.10.0.2 – 127.10.255.254); 127.0.0.0/8 or 198.18.0.0/15 (the real tier). They are never bound. */
  podIPRange?: IpRange;
  /**
   * Simulated seconds after which a deleted pod's IP may go to a new pod (the VPC CNI's IP cooldown); default:
   * only once the whole range has been handed out.
   */
  podIPCooldownSeconds?: number;
  /** Where pod addresses lead; shared with whatever talks to pods (the ALB). Default: a network of its own. */
  network?: LabNetwork;
  /** The node's IP, reported as status.hostIP (default 127.0.0.1). */
  hostIP?: string;
  /**
   * Run only pods a scheduler bound to this node (a real control plane has kube-scheduler); by default the kubelet
   * also takes unscheduled pods and sets spec.nodeName itself, as the embedded control plane has no scheduler.
   */
  waitForScheduler?: boolean;
  /**
   * The Node's spec.providerID (default `lab:///lab-1a/<node>`). The lab sets the EC2 form
   * `aws:///<zone>/<instance-id>` so that the real AWS Load Balancer Controller finds the node's instance and ENI.
   */
  providerID?: string;
  /** Images whose containers run as real child processes (the project's analysis image, see process.ts). */
  processImages?: ProcessImages;
  log?: (msg: string) => void;
}

export interface ProcessImages {
  matches(image: string): boolean;
  /** What to run for this container of this pod (throws ContainerStartError when the lab cannot run it). */
  prepare(pod: KubeObject, container: Obj): Promise<ProcessSpec>;
  /** The pod is gone: remove what prepare() wrote for it. */
  cleanup?(podUid: string): Promise<void>;
}

export type PodEventType = 'started' | 'listening' | 'ready' | 'prestop' | 'sigterm' | 'killed' | 'removed' | 'node-lost';

export interface PodEvent {
  type: PodEventType;
  /** `namespace/name`. */
  pod: string;
  namespace: string;
  name: string;
  uid: string;
  ip?: string;
  container?: string;
  /** Wall-clock milliseconds. */
  at: number;
}

interface PodRuntime {
  key: string;
  namespace: string;
  name: string;
  uid: string;
  ip?: string;
  containers: ContainerRunner[];
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  restartPolicy: RestartPolicy;
  /** Every container ran to completion (restartPolicy Never/OnFailure): the pod object stays, its IP is released. */
  completed: boolean;
  ipReleased: boolean;
  startTime: number;
  started: boolean;
  terminating: boolean;
  terminationStart: number;
  graceSeconds: number;
  killTimer?: NodeJS.Timeout;
  sigtermAt: Map<string, number>;
  timers: Set<NodeJS.Timeout>;
  finished: boolean;
  ready: boolean;
  statusQueued: boolean;
  /** Its node went away (fault node-loss): nothing runs, the object waits for the node lifecycle controller. */
  lost?: boolean;
}

/** node-loss: world seconds until the node lifecycle controller marks the lost node's pods not Ready (node-monitor-grace-period 40 s). */
export const NODE_NOT_READY_SECONDS = 40;
/** node-loss: world seconds until the lost node's pod objects are deleted (the Node object removed with its instance, then pod GC). */
export const NODE_GONE_SECONDS = 60;

export class Kubelet {
  readonly nodeName: string;
  private readonly hostIP: string;
  private readonly ips: IpAllocator;
  private readonly net: LabNetwork;
  private readonly events: EventRecorder;
  private readonly pods = new Map<string, PodRuntime>();
  private readonly listeners = new Set<(e: PodEvent) => void>();
  private unwatch: (() => void) | undefined;
  private running = false;
  private readonly log: (msg: string) => void;
  private readonly lossTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly store: ClusterAccess,
    private readonly clock: LabClock,
    private readonly opts: KubeletOptions = {},
  ) {
    this.nodeName = opts.nodeName ?? 'lab-node-1';
    this.hostIP = opts.hostIP ?? '127.0.0.1';
    const cooldown = opts.podIPCooldownSeconds ?? clock.timings.podIpCooldownSeconds;
    this.ips = new IpAllocator(opts.podIPRange ?? defaultIpRange(), cooldown !== undefined ? { cooldownMs: clock.ms(cooldown) } : {});
    this.net = opts.network ?? new LabNetwork();
    this.events = new EventRecorder(store, 'kubelet');
    this.log = opts.log ?? (() => {});
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.opts.registerNode !== false) this.registerNode();
    this.unwatch = this.store.watch('Pod', undefined, undefined, (e) => this.onPod(e));
    for (const pod of this.store.list('Pod').items) this.onPod({ type: 'ADDED', kind: 'Pod', object: pod, resourceVersion: 0 });
  }

  /** Closes every server at once and forgets all pods (their objects stay in the store). */
  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    for (const t of this.lossTimers) clearTimeout(t);
    this.lossTimers.clear();
    const closing: Array<Promise<void>> = [];
    for (const rt of this.pods.values()) {
      rt.finished = true;
      this.clearTimers(rt);
      for (const c of rt.containers) closing.push(c.destroy());
      this.releaseIp(rt);
    }
    this.pods.clear();
    await Promise.all(closing);
  }

  /**
   * Fault node-loss: the instance under `count` running pods (picked by `random`) is gone. They vanish at once — no
   * preStop, no SIGTERM, no last status — and their addresses turn into blackholes (the ALB's connections and health
   * checks to them time out). After NODE_NOT_READY_SECONDS their Ready condition turns False (their endpoints go),
   * after NODE_GONE_SECONDS their objects are deleted and their ReplicaSets replace them on the nodes that remain
   * (here: this kubelet). Returns the pods lost, `namespace/name`.
   */
  loseNode(count: number, random: LabRandom): string[] {
    const candidates = [...this.pods.values()].filter((rt) => !rt.finished && !rt.terminating && rt.ip).sort((a, b) => a.key.localeCompare(b.key));
    const lost: PodRuntime[] = [];
    while (lost.length < count && candidates.length > 0) lost.push(candidates.splice(random.int(candidates.length), 1)[0]!);
    for (const rt of lost) {
      rt.finished = true;
      rt.lost = true;
      this.clearTimers(rt);
      for (const c of rt.containers) void c.destroy();
      this.net.detach(rt.ip!, rt.uid);
      this.emit(rt, 'node-lost');
      this.log(`kubelet: fault node-loss: pod ${rt.key} (${rt.ip}) is gone with its node`);
    }
    const later = (seconds: number, fn: () => void): void => {
      const t = this.clock.after(seconds, () => {
        this.lossTimers.delete(t);
        if (this.running) fn();
      });
      this.lossTimers.add(t);
    };
    later(NODE_NOT_READY_SECONDS, () => {
      for (const rt of lost) {
        try {
          this.mutateStatus(rt, (st) => {
            setOwn(st, 'Ready', 'False', 'NodeLost', 'the node of this pod is gone (lab fault node-loss)');
            setOwn(st, 'ContainersReady', 'False', 'NodeLost', 'the node of this pod is gone (lab fault node-loss)');
          });
        } catch {
          // deleted meanwhile
        }
      }
    });
    later(NODE_GONE_SECONDS, () => {
      for (const rt of lost) this.removeIfSame(rt.namespace, rt.name, rt.uid);
    });
    return lost.map((rt) => rt.key);
  }

  /** Where pod addresses lead: hand it to anything that talks to pods. */
  get network(): PodNetwork {
    return this.net;
  }

  /** A pod's IP and (first) container port, while the pod runs here. */
  podAddress(namespace: string, name: string): { ip: string; port: number } | undefined {
    const rt = this.pods.get(`${namespace}/${name}`);
    if (!rt?.ip) return undefined;
    for (const c of rt.containers) {
      const port = c.ports[0];
      if (port !== undefined) return { ip: rt.ip, port };
    }
    return undefined;
  }

  private releaseIp(rt: PodRuntime): void {
    if (!rt.ip || rt.ipReleased) return;
    rt.ipReleased = true;
    this.net.detach(rt.ip, rt.uid);
    this.ips.release(rt.ip);
  }

  /** Timeline hook; returns an unsubscribe function. */
  onPodEvent(cb: (e: PodEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(rt: PodRuntime, type: PodEventType, container?: string): void {
    const e: PodEvent = { type, pod: rt.key, namespace: rt.namespace, name: rt.name, uid: rt.uid, at: Date.now() };
    if (rt.ip) e.ip = rt.ip;
    if (container) e.container = container;
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log(`kubelet: pod event listener failed: ${(err as Error).message}`);
      }
    }
  }

  private registerNode(): void {
    if (this.store.get('Node', '', this.nodeName)) return;
    const now = isoSeconds();
    const cond = (type: string, status: string, reason: string, message: string): Obj => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    try {
      this.store.create('Node', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: this.nodeName,
          labels: {
            'kubernetes.io/hostname': this.nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64',
            'node.kubernetes.io/instance-type': 'lab',
            'topology.kubernetes.io/region': 'lab-1',
            'topology.kubernetes.io/zone': 'lab-1a',
          },
        },
        spec: { providerID: this.opts.providerID ?? `lab:///lab-1a/${this.nodeName}` },
        status: {
          conditions: [
            cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
            cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
            cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
            cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
          ],
          addresses: [
            { type: 'InternalIP', address: this.hostIP },
            { type: 'Hostname', address: this.nodeName },
          ],
          capacity: { cpu: '8', memory: '32Gi', pods: '1000' },
          allocatable: { cpu: '8', memory: '32Gi', pods: '1000' },
          nodeInfo: {
            architecture: process.arch,
            operatingSystem: 'linux',
            kubeletVersion: 'v1.33.0-lab',
            kubeProxyVersion: 'v1.33.0-lab',
            containerRuntimeVersion: 'lab://1.0',
            osImage: 'alb-rollout lab',
            kernelVersion: '',
            machineID: '',
            systemUUID: '',
            bootID: '',
          },
        },
      });
    } catch (err) {
      this.log(`kubelet: could not register Node ${this.nodeName}: ${(err as Error).message}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // watch

  private onPod(e: StoreEvent): void {
    if (!this.running) return;
    const pod = e.object;
    const key = `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
    const uid = String(pod.metadata.uid);
    const rt = this.pods.get(key);
    if (rt?.lost && rt.uid === uid) {
      if (e.type !== 'DELETED') return;
      this.ips.release(rt.ip!);
      this.pods.delete(key);
      this.emit(rt, 'removed');
      return;
    }
    if (e.type === 'DELETED') {
      if (rt && rt.uid === uid) this.hardStop(rt);
      return;
    }
    const nodeName = strAt(objAt(pod, 'spec'), 'nodeName');
    if (nodeName && nodeName !== this.nodeName) return;
    if (!nodeName && this.opts.waitForScheduler && !rt) return;
    if (!rt || rt.uid !== uid) {
      if (rt && rt.uid !== uid) this.hardStop(rt);
      if (pod.metadata.deletionTimestamp) {
        // Deleted before it ever ran here: nothing to stop.
        setImmediate(() => this.removeIfSame(pod.metadata.namespace ?? '', pod.metadata.name, uid));
        return;
      }
      this.admit(pod);
      return;
    }
    if (pod.metadata.deletionTimestamp) {
      if (!rt.terminating) setImmediate(() => this.startTermination(rt));
      else this.maybeShortenGrace(rt, pod);
    }
    this.queueStatus(rt);
  }

  private removeIfSame(namespace: string, name: string, uid: string): void {
    const current = this.store.get('Pod', namespace, name);
    if (!current || String(current.metadata.uid) !== uid) return;
    try {
      this.store.removeNow('Pod', namespace, name);
    } catch {
      // already gone
    }
  }

  // -------------------------------------------------------------------------------------------
  // start

  private admit(pod: KubeObject): void {
    const namespace = pod.metadata.namespace ?? '';
    const rt: PodRuntime = {
      key: `${namespace}/${pod.metadata.name}`,
      namespace,
      name: pod.metadata.name,
      uid: String(pod.metadata.uid),
      containers: [],
      phase: 'Pending',
      restartPolicy: restartPolicyOf(pod),
      completed: false,
      ipReleased: false,
      startTime: Date.now(),
      started: false,
      terminating: false,
      terminationStart: 0,
      graceSeconds: 30,
      sigtermAt: new Map(),
      timers: new Set(),
      finished: false,
      ready: false,
      statusQueued: false,
    };
    this.pods.set(rt.key, rt);
    const specs = arrAt(objAt(pod, 'spec'), 'containers');
    let ip: string;
    try {
      ip = this.ips.allocate();
    } catch (err) {
      this.log(`kubelet: pod ${rt.key}: ${(err as Error).message}`);
      this.pods.delete(rt.key);
      return;
    }
    try {
      this.net.attach(ip, rt.uid);
    } catch (err) {
      // Only when the network is shared with something else handing out the same range.
      this.log(`kubelet: pod ${rt.key}: ${(err as Error).message}`);
      this.ips.release(ip);
      this.pods.delete(rt.key);
      return;
    }
    // Set up outside the watch callback that admitted the pod (it writes the pod).
    setImmediate(() => this.setUp(rt, ip, specs, pod));
  }

  private setUp(rt: PodRuntime, ip: string, specs: Obj[], pod: KubeObject): void {
    if (rt.finished || !this.running) {
      this.net.detach(ip, rt.uid);
      this.ips.release(ip);
      return;
    }
    rt.ip = ip;
    rt.containers = specs.map(
      (spec) =>
        new ContainerRunner(spec, {
          ip,
          network: this.net,
          namespace: rt.namespace,
          podName: rt.name,
          podUid: rt.uid,
          clock: this.clock,
          onChange: () => this.queueStatus(rt),
          onExit: () => this.onContainerExit(rt),
          emit: (type, container) => this.emit(rt, type, container),
          onCrash: (container, backoff) => this.backOffEvent(rt, container, backoff),
          log: this.log,
          restartPolicy: rt.restartPolicy,
          ...(this.opts.processImages?.matches(strAt(spec, 'image') ?? '') ? { process: () => (this.opts.processImages as ProcessImages).prepare(pod, spec) } : {}),
        }),
    );
    const current = this.store.get('Pod', rt.namespace, rt.name);
    if (!current || String(current.metadata.uid) !== rt.uid) {
      this.hardStop(rt);
      return;
    }
    if (strAt(objAt(current, 'spec'), 'nodeName') !== this.nodeName && !this.opts.waitForScheduler) {
      this.store.mutate('Pod', rt.namespace, rt.name, (p) => {
        (objAt(p, 'spec', true) as Obj).nodeName = this.nodeName;
      });
    }
    rt.startTime = Date.now();
    this.writeStatus(rt);
    if (current.metadata.deletionTimestamp) {
      this.startTermination(rt);
      return;
    }
    this.timer(rt, this.clock.delay('containerStartSeconds'), () => {
      if (rt.finished || rt.terminating) return;
      rt.phase = 'Running';
      rt.started = true;
      for (const c of rt.containers) c.start();
      this.emit(rt, 'started');
      this.queueStatus(rt);
    });
  }

  private timer(rt: PodRuntime, seconds: number, fn: () => void): NodeJS.Timeout {
    const t = this.clock.after(seconds, () => {
      rt.timers.delete(t);
      fn();
    });
    rt.timers.add(t);
    return t;
  }

  private clearTimers(rt: PodRuntime): void {
    for (const t of rt.timers) clearTimeout(t);
    rt.timers.clear();
    if (rt.killTimer) clearTimeout(rt.killTimer);
    rt.killTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // status

  private queueStatus(rt: PodRuntime): void {
    if (rt.statusQueued || rt.finished || !rt.ip) return;
    rt.statusQueued = true;
    setImmediate(() => {
      rt.statusQueued = false;
      if (!rt.finished && this.running) this.writeStatus(rt);
    });
  }

  /** Changes the status of this pod's object (not of a newer pod of the same name). */
  private mutateStatus(rt: PodRuntime, fn: (status: Obj, pod: KubeObject) => void): void {
    this.store.mutate(
      'Pod',
      rt.namespace,
      rt.name,
      (pod) => {
        if (String(pod.metadata.uid) !== rt.uid) return;
        fn(objAt(pod, 'status', true) as Obj, pod);
      },
      'status',
    );
  }

  private writeStatus(rt: PodRuntime, final = false): void {
    let readyNow = false;
    try {
      this.mutateStatus(rt, (st, pod) => {
          st.phase = rt.phase;
          st.hostIP = this.hostIP;
          st.hostIPs = [{ ip: this.hostIP }];
          if (rt.ip) {
            st.podIP = rt.ip;
            st.podIPs = [{ ip: rt.ip }];
          }
          st.startTime = isoSeconds(rt.startTime);
          if (rt.containers.length > 0) st.containerStatuses = rt.containers.map((c) => c.status());
          const unready = rt.containers.filter((c) => final || !c.ready).map((c) => c.name);
          const containersReady = rt.started && unready.length === 0;
          if (rt.completed) {
            // kubelet's conditions for a pod whose containers ran to completion.
            setOwn(st, 'PodScheduled', 'True');
            setOwn(st, 'Initialized', 'True', 'PodCompleted');
            setOwn(st, 'ContainersReady', 'False', 'PodCompleted');
            setOwn(st, 'Ready', 'False', 'PodCompleted');
            return;
          }
          const unreadyMsg = `containers with unready status: [${unready.join(' ')}]`;
          const gateMessages: string[] = [];
          for (const g of arrAt(objAt(pod, 'spec'), 'readinessGates')) {
            const type = strAt(g, 'conditionType');
            if (!type) continue;
            const c = conditions(st).find((x) => x.type === type);
            if (!c) gateMessages.push(`corresponding condition of pod readiness gate "${type}" does not exist.`);
            else if (c.status !== 'True') gateMessages.push(`the status of pod readiness gate "${type}" is not "True", but ${c.status}`);
          }
          setOwn(st, 'PodScheduled', 'True');
          setOwn(st, 'Initialized', 'True');
          if (containersReady) setOwn(st, 'ContainersReady', 'True');
          else setOwn(st, 'ContainersReady', 'False', 'ContainersNotReady', unreadyMsg);
          if (!containersReady) setOwn(st, 'Ready', 'False', 'ContainersNotReady', unreadyMsg);
          else if (gateMessages.length > 0) setOwn(st, 'Ready', 'False', 'ReadinessGatesNotReady', gateMessages.join(', '));
          else setOwn(st, 'Ready', 'True');
          readyNow = containersReady && gateMessages.length === 0;
      });
    } catch (err) {
      this.log(`kubelet: status update of pod ${rt.key} failed: ${(err as Error).message}`);
      return;
    }
    if (readyNow && !rt.ready) this.emit(rt, 'ready');
    rt.ready = readyNow;
  }

  // -------------------------------------------------------------------------------------------
  // termination

  private startTermination(rt: PodRuntime): void {
    if (rt.terminating || rt.finished) return;
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    if (!pod || String(pod.metadata.uid) !== rt.uid) {
      this.hardStop(rt);
      return;
    }
    rt.terminating = true;
    rt.terminationStart = Date.now();
    rt.graceSeconds = graceOf(pod);
    if (!rt.started || !rt.ip || rt.completed) {
      // Containers never started: nothing to stop.
      this.finish(rt);
      return;
    }
    if (rt.containers.some((c) => c.hasPreStop)) this.emit(rt, 'prestop');
    for (const c of rt.containers) {
      const preStop = Math.min(c.preStopSeconds, rt.graceSeconds);
      this.timer(rt, preStop, () => this.sigterm(rt, c));
    }
    this.scheduleKill(rt);
  }

  private sigterm(rt: PodRuntime, c: ContainerRunner): void {
    if (c.exited || rt.sigtermAt.has(c.name) || rt.finished) return;
    rt.sigtermAt.set(c.name, Date.now());
    this.emit(rt, 'sigterm', c.name);
    c.sigterm();
  }

  private scheduleKill(rt: PodRuntime): void {
    if (rt.killTimer) clearTimeout(rt.killTimer);
    const remainingMs = rt.terminationStart + this.clock.ms(rt.graceSeconds) - Date.now();
    rt.killTimer = this.clock.after(Math.max(0, this.clock.simulatedSeconds(remainingMs)), () => {
      rt.killTimer = undefined;
      this.graceExpired(rt);
    });
  }

  private graceExpired(rt: PodRuntime): void {
    if (rt.finished) return;
    const minGraceMs = this.clock.ms(MIN_GRACE_AFTER_PRESTOP_SECONDS);
    for (const c of rt.containers) {
      if (c.exited) continue;
      if (!rt.sigtermAt.has(c.name)) this.sigterm(rt, c); // preStop cut short by the grace period
      if (c.exited) continue;
      const since = Date.now() - (rt.sigtermAt.get(c.name) ?? 0);
      if (since >= minGraceMs || rt.graceSeconds === 0) this.kill(rt, c);
      else this.timer(rt, this.clock.simulatedSeconds(minGraceMs - since), () => this.kill(rt, c));
    }
  }

  private kill(rt: PodRuntime, c: ContainerRunner): void {
    if (c.exited || rt.finished) return;
    this.emit(rt, 'killed', c.name);
    c.kill();
  }

  private maybeShortenGrace(rt: PodRuntime, pod: KubeObject): void {
    const grace = graceOf(pod);
    if (grace >= rt.graceSeconds) return;
    rt.graceSeconds = grace;
    this.scheduleKill(rt);
  }

  private onContainerExit(rt: PodRuntime): void {
    if (rt.finished) return;
    if (rt.terminating && rt.containers.every((c) => c.exited)) this.finish(rt);
    else if (!rt.terminating && rt.restartPolicy !== 'Always' && rt.containers.every((c) => c.exited)) this.complete(rt);
    else this.queueStatus(rt);
  }

  /**
   * restartPolicy Never/OnFailure and every container terminated: phase Succeeded when all exited 0, else Failed;
   * the sandbox goes (IP released) but the pod object stays for its owner (the Job controller) to read and delete.
   */
  private complete(rt: PodRuntime): void {
    rt.completed = true;
    rt.phase = rt.containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
    this.clearTimers(rt);
    this.writeStatus(rt, true);
    this.releaseIp(rt);
  }

  /**
   * All containers stopped: report the final status; after the sandbox teardown (`podTeardownSeconds`) release the
   * IP and remove the pod object. Until then the IP stays allocated with nothing listening: connections to it are
   * refused, as on a node whose pod network namespace still exists.
   */
  private finish(rt: PodRuntime): void {
    if (rt.finished) return;
    rt.finished = true;
    this.clearTimers(rt);
    for (const c of rt.containers) if (!c.exited) c.kill();
    this.writeStatus(rt, true);
    const release = (): void => {
      this.releaseIp(rt);
      if (this.pods.get(rt.key) === rt) this.pods.delete(rt.key);
      this.emit(rt, 'removed');
      this.cleanupProcesses(rt);
      this.removeIfSame(rt.namespace, rt.name, rt.uid);
    };
    const teardown = this.clock.delay('podTeardownSeconds');
    if (!rt.ip || !(teardown > 0)) {
      release();
      return;
    }
    // Tracked in rt.timers so that stop() cancels it (and releases the IP itself).
    this.timer(rt, teardown, () => {
      if (this.running) release();
    });
  }

  /** kubelet's event for a container that exited and waits to be restarted. */
  private backOffEvent(rt: PodRuntime, container: string, backoffSeconds: number): void {
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    if (!pod || String(pod.metadata.uid) !== rt.uid) return;
    this.log(`kubelet: pod ${rt.key} container ${container} exited; restarting in ${backoffSeconds}s (CrashLoopBackOff)`);
    this.events.record(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${container} in pod ${rt.name}_${rt.namespace}(${rt.uid})`);
  }

  /** The pod object is gone (force delete) or replaced: stop everything now. */
  private hardStop(rt: PodRuntime): void {
    if (rt.finished) return;
    rt.finished = true;
    this.clearTimers(rt);
    let killed = false;
    for (const c of rt.containers) {
      if (!c.exited) {
        killed = true;
        c.kill();
      }
    }
    if (killed) this.emit(rt, 'killed');
    this.releaseIp(rt);
    if (this.pods.get(rt.key) === rt) this.pods.delete(rt.key);
    this.emit(rt, 'removed');
    this.cleanupProcesses(rt);
  }

  private cleanupProcesses(rt: PodRuntime): void {
    const images = this.opts.processImages;
    if (!images?.cleanup || !rt.containers.some((c) => images.matches(c.image))) return;
    images.cleanup(rt.uid).catch((err: Error) => this.log(`kubelet: cleaning up pod ${rt.key}: ${err.message}`));
  }
}

function restartPolicyOf(pod: KubeObject): RestartPolicy {
  const p = strAt(objAt(pod, 'spec'), 'restartPolicy');
  return p === 'Never' || p === 'OnFailure' ? p : 'Always';
}

function graceOf(pod: KubeObject): number {
  return (
    numAt(pod.metadata as Obj, 'deletionGracePeriodSeconds') ?? numAt(objAt(pod, 'spec'), 'terminationGracePeriodSeconds') ?? 30
  );
}

/** Sets one of the kubelet's own conditions; lastTransitionTime changes only with the status. */
function setOwn(st: Obj, type: string, status: string, reason?: string, message?: string): void {
  if (!OWN_CONDITIONS.has(type)) return;
  const list = conditions(st);
  const i = list.findIndex((c) => c.type === type);
  const current = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: current && current.status === status && current.lastTransitionTime ? current.lastTransitionTime : isoNow(),
  };
  if (reason) next.reason = reason;
  if (message) next.message = message;
  if (i >= 0) list[i] = next;
  else list.push(next);
  st.conditions = list;
}
