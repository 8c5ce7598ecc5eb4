/**
 * Lab time. Every delay in the lab is configured in *simulated* seconds (what it would be on EKS/AWS)
 * and compressed by one time-scale factor, so that a realistic rollout takes seconds of wall time.
 * Timestamps written into objects stay real wall-clock time.
 */
export interface LabTimings {
  /** Simulated seconds per real second (e.g. 20 → a 300 s deregistration delay lasts 15 real seconds). */
  timeScale: number;
  /** Seconds from a container starting to its server listening (before LAB_BEHAVIOR slow-start). */
  containerStartSeconds: number;
  /** LBC: seconds from an endpoint change to the TargetGroupBinding reconcile running. */
  lbcReconcileSeconds: number;
  /** LBC: requeue while any gate is not True (LBC's --targetgroupbinding-requeue-duration, 15 s). */
  lbcRequeueSeconds: number;
  /** LBC: seconds from an Ingress change to the ALB + target groups + TargetGroupBindings existing. */
  lbcIngressReconcileSeconds: number;
  /** ALB: seconds until a (de)registration reaches the data plane. */
  albPropagationSeconds: number;
  /** ALB: connect timeout to a target before answering 504 (AWS: 10 s). */
  albConnectTimeoutSeconds: number;
  /**
   * Kubelet: seconds from a terminating pod's last container exiting until its sandbox is torn down (the pod IP
   * released) and the pod object removed. Meanwhile the IP is still a live address with nothing listening, so a
   * connection to it is refused (the ALB answers 502); afterwards the address is a blackhole (504).
   */
  podTeardownSeconds: number;
  /** Endpoint controller latency after a pod change. */
  endpointsSeconds: number;
  /** CloudWatch metric period in simulated seconds (60). */
  metricPeriodSeconds: number;
}

export const REALISTIC_TIMINGS: LabTimings = {
  timeScale: 1,
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

/** The default lab: realistic delays, 20× faster. */
export const DEFAULT_TIMINGS: LabTimings = { ...REALISTIC_TIMINGS, timeScale: 20 };

export class LabClock {
  constructor(readonly timings: LabTimings) {}

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
