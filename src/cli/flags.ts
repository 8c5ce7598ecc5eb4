import { GUARD_FLAGS, type RawGuardOptions } from '../guard/index.js';
import type { RawConnectionOptions } from '../options.js';
import { str, type FlagValues } from './args.js';

/** Flags that say where the cluster and AWS are (deploy, analyze, rollback). */
export const CONNECTION_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  region: { type: 'string' },
  lab: { type: 'string' },
  'time-scale': { type: 'string' },
  'time-origin': { type: 'string' },
} as const;

export const CONNECTION_HELP = `  --kubeconfig PATH          (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --context NAME             kubeconfig context (default: the current one)
  --region REGION            AWS region (default: the SDK's chain, e.g. AWS_REGION)
  --lab DIR                  talk to \`alb-rollout lab up --state-dir DIR\` (kubeconfig, AWS endpoints, clock)`;

export function connectionRaw(values: FlagValues): RawConnectionOptions {
  return {
    kubeconfig: str(values, 'kubeconfig'),
    context: str(values, 'context'),
    region: str(values, 'region'),
    lab: str(values, 'lab'),
    timeScale: str(values, 'time-scale'),
    timeOrigin: str(values, 'time-origin'),
  };
}

/** Guard flags: all strings, the list-valued ones repeatable. */
export const GUARD_FLAG_OPTIONS = Object.fromEntries(
  GUARD_FLAGS.map((f) => [f, f === 'probe-url' || f === 'probe-header' ? { type: 'string', multiple: true } : { type: 'string' }]),
) as Record<(typeof GUARD_FLAGS)[number], { type: 'string'; multiple?: boolean }>;

export function guardRaw(values: FlagValues): RawGuardOptions {
  const raw: RawGuardOptions = {};
  for (const f of GUARD_FLAGS) if (values[f] !== undefined) raw[f] = values[f] as string | string[];
  return raw;
}

export const GUARD_HELP = `  --guard on|off             the 5xx guard from the workload apply to the end of the bake window (on)
  --bake 2m                  how long the guard keeps watching after the rollout
  --rollback auto|off        roll back on a guard failure (auto) or only report (off)
  --probe on|require|off|report   preflight: reach the probe URL and baseline the live version before applying;
                             unreachable → go on with the other signals (on) or stop, exit 2, nothing applied (require)
  --probe-url URL            probe this URL (repeatable; default: http://<ALB hostname>/)
  --probe-rate N             probe requests per second (10)
  --probe-baseline-requests 200, --probe-baseline-max-duration 30s
                             the old version's baseline: requests before applying, and their deadline
  --max-error-rate 5%        a probe window fails above this error rate (with a baseline: above its rate + this)…
  --confidence 95%           of the judgement against the baseline (probe and CloudWatch)
  --max-errors N             …and with more than N errors (1)
  --min-requests N           fewer requests in a window = inconclusive (5)
  --consecutive-failures N   failing probe windows in a row that decide (2)
  --cloudwatch on|off|report, --cloudwatch-period 60, --cloudwatch-settle 2m
  --cloudwatch-baseline 5m   settled minutes before applying read as the old version's baseline (0 = none)
  --target-health on|off|report, --target-health-interval 5s
  --cloudwatch-elb-5xx auto|on|off   count the LB's own 5xx (auto: only when the LB is not shared)
  --min-probe-windows 3, --min-cloudwatch-periods 1, --min-target-health-checks 3
                             what a guard pass needs (any one signal); otherwise inconclusive → result unverified
  --on-inconclusive fail|pass   exit code of an unverified run (fail = 1)
  (all guard flags: ${GUARD_FLAGS.join(', ')})`;
