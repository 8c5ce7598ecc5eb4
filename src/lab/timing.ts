/**
 * Lab time. Every delay in the lab is configured in *simulated* seconds (what it would be on EKS/AWS)
 * and compressed by one time-scale factor, so that a realistic rollout takes seconds of wall time.
 * Timestamps written into objects stay real wall-clock time.
 *
 * A delay is a constant or a distribution (`Delay`); `LabClock.delay(name)` draws it from the lab's seeded PRNG.
 */
import { LabRandom, type Delay } from './random.js';

export type { Delay, DelayDistribution } from './random.js';
/** `fast`: every delay a constant (deterministic tests); `realistic`: delays drawn from distributions with tails. */
export type TimingProfile = 'fast' | 'realistic';

export const TIMING_PROFILES: readonly TimingProfile[] = ['fast', 'realistic'];

export interface LabTimings {
  /** Simulated seconds per real second (e.g. 20 → a 300 s deregistration delay lasts 15 real seconds). */
  timeScale: number;
  /** Which profile these timings come from (reported in lab.json and by `lab experiment`). */
  profile?: TimingProfile;
  /** Seconds from a container starting to its server listening (before LAB_BEHAVIOR slow-start); pod start jitter. */
  containerStartSeconds: Delay;
  /** LBC: seconds from an endpoint change to the TargetGroupBinding reconcile running (informer + work queue). */
  lbcReconcileSeconds: Delay;
  /** LBC: requeue while any gate is not True (LBC's --targetgroupbinding-requeue-duration, 15 s). */
  lbcRequeueSeconds: number;
  /** LBC: seconds from an Ingress change to the ALB + target groups + TargetGroupBindings existing. */
  lbcIngressReconcileSeconds: Delay;
  /** LBC: concurrent reconciles per controller (--targetgroupbinding-max-concurrent-reconciles, 3); 0 = unlimited. */
  lbcWorkers?: number;
  /** ELBv2/CloudWatch API: service time of one call (every caller: LBC and SDK clients). Default 0. */
  awsApiLatencySeconds?: Delay;
  /**
   * ALB: seconds until a registration reaches one load-balancer node (its routing table and health checker), drawn
   * per node; also the deregistration and health-to-routing delays unless those are given.
   */
  albPropagationSeconds: Delay;
  /** ALB: seconds until a deregistration reaches one node (it stops routing new requests there), drawn per node. */
  albDeregistrationSeconds?: Delay;
  /** ALB: seconds from a node's own health-check verdict to its routing table using it. */
  albHealthRoutingSeconds?: Delay;
  /** ALB: load-balancer nodes, each with its own routing table and health checks (default 1; one per AZ on AWS). */
  albNodes?: number;
  /**
   * ALB: a node's first health check of a new target: 'immediate' (at once when the registration reaches it) or
   * 'random' (at a random point of the first interval, as a checker already running on its own schedule).
   */
  albFirstHealthCheck?: 'immediate' | 'random';
  /**
   * ALB: keep-alive connections to targets (a response's connection carries later requests; idle ones closed after
   * the idle timeout). Default false: a fresh connection per request.
   */
  albKeepAlive?: boolean;
  /** ALB: seconds from a target closing an idle pooled connection until the ALB stops reusing it (a reuse → 502). */
  albTargetCloseNoticeSeconds?: Delay;
  /** Kubelet: a released pod IP is handed to a new pod once free this long (VPC CNI's IP cooldown, 30 s). */
  podIpCooldownSeconds?: number;
  /** ALB: connect timeout to a target before answering 504 (AWS: 10 s). */
  albConnectTimeoutSeconds: number;
  /**
   * Kubelet: seconds from a terminating pod's last container exiting until its sandbox is torn down (the pod IP
   * released) and the pod object removed. Meanwhile the IP is still a live address with nothing listening, so a
   * connection to it is refused (the ALB answers 502); afterwards the address is a blackhole (504).
   */
  podTeardownSeconds: Delay;
  /** Endpoint controller latency after a pod change. */
  endpointsSeconds: Delay;
  /** CloudWatch metric period in simulated seconds (60). */
  metricPeriodSeconds: number;
  /** CloudWatch: seconds after a period ends before its datapoint can be read (0: at once, partial periods too). */
  cloudwatchLagSeconds?: Delay;
}

/** The fast profile at real time: constant delays (the lab's historical behaviour; tests rely on it). */
export const FAST_TIMINGS: LabTimings = {
  timeScale: 1,
  profile: 'fast',
  containerStartSeconds: 2,
  lbcReconcileSeconds: 2,
  lbcRequeueSeconds: 15,
  lbcIngressReconcileSeconds: 5,
  albPropagationSeconds: 5,
  albConnectTimeoutSeconds: 10,
  podTeardownSeconds: 2,
  endpointsSeconds: 0.5,
  metricPeriodSeconds: 60,
};

/**
 * The realistic profile at real time: distributions with tails. Sources and reasoning: docs/lab-timings.md.
 */
export const REALISTIC_TIMINGS: LabTimings = {
  timeScale: 1,
  profile: 'realistic',
  containerStartSeconds: { median: 3, p99: 15, min: 1, max: 30 },
  lbcReconcileSeconds: { median: 1, p99: 6, min: 0.1, max: 15 },
  lbcRequeueSeconds: 15,
  lbcIngressReconcileSeconds: { median: 8, p99: 30, min: 3, max: 60 },
  lbcWorkers: 3,
  awsApiLatencySeconds: { median: 0.12, p99: 1, min: 0.03, max: 3 },
  albPropagationSeconds: { median: 10, p99: 30, min: 3, max: 60 },
  albDeregistrationSeconds: { median: 6, p99: 20, min: 2, max: 30 },
  albHealthRoutingSeconds: { median: 0.5, p99: 2, min: 0.1, max: 5 },
  albNodes: 2,
  albFirstHealthCheck: 'random',
  albConnectTimeoutSeconds: 10,
  albKeepAlive: true,
  albTargetCloseNoticeSeconds: { median: 0.3, p99: 1, min: 0.05, max: 2 },
  podIpCooldownSeconds: 30,
  podTeardownSeconds: { median: 2, p99: 6, min: 0.5, max: 10 },
  endpointsSeconds: { median: 0.3, p99: 2, min: 0.05, max: 5 },
  metricPeriodSeconds: 60,
  cloudwatchLagSeconds: { median: 90, p99: 170, min: 60, max: 180 },
};

/** The default lab: the fast profile, 20× faster than real time. */
export const DEFAULT_TIMINGS: LabTimings = { ...FAST_TIMINGS, timeScale: 20 };

/** A profile's timings with the lab's default time scale (20×), then the overrides. */
export function timingsFor(profile: TimingProfile = 'fast', overrides: Partial<LabTimings> = {}): LabTimings {
  const base = profile === 'realistic' ? REALISTIC_TIMINGS : FAST_TIMINGS;
  return { ...base, timeScale: DEFAULT_TIMINGS.timeScale, ...overrides };
}

/** The delay fields of LabTimings (what `LabClock.delay` draws). */
export type DelayName =
  | 'containerStartSeconds'
  | 'lbcReconcileSeconds'
  | 'lbcIngressReconcileSeconds'
  | 'awsApiLatencySeconds'
  | 'albPropagationSeconds'
  | 'albDeregistrationSeconds'
  | 'albHealthRoutingSeconds'
  | 'podTeardownSeconds'
  | 'endpointsSeconds'
  | 'cloudwatchLagSeconds'
  | 'albTargetCloseNoticeSeconds';

export class LabClock {
  private readonly streams = new Map<string, LabRandom>();

  /** `random`: the lab's seeded PRNG; every consumer forks its own stream from it. */
  constructor(
    readonly timings: LabTimings,
    readonly random: LabRandom = new LabRandom(0),
  ) {}

  /** The delay configured for `name`, in simulated seconds: the constant, or a fresh draw (one stream per name). */
  delay(name: DelayName): number {
    const d = this.configured(name);
    if (typeof d === 'number') return d;
    return this.stream(`delay/${name}`).delay(d);
  }

  /** The lab PRNG's stream for one consumer (the same object for the same label, for this clock). */
  stream(label: string): LabRandom {
    let r = this.streams.get(label);
    if (!r) this.streams.set(label, (r = this.random.fork(label)));
    return r;
  }

  /** The configured delay (with the documented fallbacks), undrawn. */
  configured(name: DelayName): Delay {
    const t = this.timings;
    switch (name) {
      case 'albDeregistrationSeconds':
        return t.albDeregistrationSeconds ?? t.albPropagationSeconds;
      case 'albHealthRoutingSeconds':
        return t.albHealthRoutingSeconds ?? t.albPropagationSeconds;
      case 'awsApiLatencySeconds':
        return t.awsApiLatencySeconds ?? 0;
      case 'cloudwatchLagSeconds':
        return t.cloudwatchLagSeconds ?? 0;
      case 'albTargetCloseNoticeSeconds':
        return t.albTargetCloseNoticeSeconds ?? 0;
      default:
        return t[name];
    }
  }

  /** Real milliseconds for a duration in simulated seconds. */
  ms(simulatedSeconds: number): number {
    return (simulatedSeconds * 1000) / this.timings.timeScale;
  }

  /** Simulated seconds for a real duration in milliseconds. */
  simulatedSeconds(realMs: number): number {
    return (realMs / 1000) * this.timings.timeScale;
  }

  now(): number {
    return Date.now();
  }

  /** A timer in simulated seconds; unref'd so a forgotten timer never keeps the process alive. */
  after(simulatedSeconds: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(fn, this.ms(simulatedSeconds));
    t.unref();
    return t;
  }

  every(simulatedSeconds: number, fn: () => void): NodeJS.Timeout {
    const t = setInterval(fn, Math.max(1, this.ms(simulatedSeconds)));
    t.unref();
    return t;
  }

  sleep(simulatedSeconds: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, this.ms(simulatedSeconds));
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/**
 * One draw of the deregistration path of a terminating pod, in simulated seconds: EndpointSlice update + LBC queue
 * + DeregisterTargets (one API call) + the slowest node's propagation. Until then some node may still route to it.
 */
export function sampleDeregistrationPath(clock: LabClock): number {
  const nodes = Math.max(1, clock.timings.albNodes ?? 1);
  let slowest = 0;
  for (let i = 0; i < nodes; i++) slowest = Math.max(slowest, clock.delay('albDeregistrationSeconds'));
  return clock.delay('endpointsSeconds') + clock.delay('lbcReconcileSeconds') + clock.delay('awsApiLatencySeconds') + slowest;
}
