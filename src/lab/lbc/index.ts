import type { KubeObject } from '../../manifests/types.js';
import type { AlbCloud } from '../alb/cloud.js';
import { awsAccount, type AwsAccount } from '../aws/account.js';
import type { ClusterAccess } from '../cluster.js';
import { StoreError } from '../store.js';
import type { LabClock } from '../timing.js';
import { IngressController } from './ingress.js';
import { ServiceController } from './service.js';
import { TgbController } from './tgb.js';
import { installWebhooks, mutatingWebhookConfiguration } from './webhook.js';

export { gateConditionType, parseStringMap, GATE_INJECT_LABEL, GATE_PREFIX, INGRESS_FINALIZER, TGB_FINALIZER } from './annotations.js';
export { pathPatterns, backendServices } from './ingress.js';
export { gatesForPod, WEBHOOK_CONFIGURATION_NAME } from './webhook.js';
export { isLbcService, NLB_LOAD_BALANCER_CLASS, SERVICE_FINALIZER } from './service.js';
export { groupOf, loadGroup, GROUP_NAME_ANN, GROUP_ORDER_ANN } from './group.js';

export interface LbcOptions {
  store: ClusterAccess;
  clock: LabClock;
  alb: AlbCloud;
  /** Informational (events/logs); ARNs carry the ALB model's own region. */
  region?: string;
  /** Hashed into ALB and target-group names and tagged as `elbv2.k8s.aws/cluster` (default 'lab'). */
  clusterName?: string;
  /** false simulates the pod webhook being down with failurePolicy Ignore: pods are admitted without gates. Default true. */
  webhookEnabled?: boolean;
  /** The account gateway to call ELBv2 through; default: the ALB's own account (shared with the AWS API servers). */
  account?: AwsAccount;
  /** The MutatingWebhookConfiguration to create (default: LBC's own, pointing at its Service; the real tier points it at a URL). */
  webhookConfiguration?: KubeObject;
}

export interface Lbc {
  /** Turns the readiness-gate webhook on/off at run time (off = down with failurePolicy Ignore). */
  setWebhookEnabled(enabled: boolean): void;
  readonly webhookEnabled: boolean;
  readonly clusterName: string;
  stop(): Promise<void>;
}

/**
 * Starts the AWS Load Balancer Controller emulation against the lab's object store: the readiness-gate webhook
 * (plus the `aws-load-balancer-webhook` MutatingWebhookConfiguration object), the Ingress (IngressGroup)
 * controller, the Service (NLB) controller and the TargetGroupBinding controller. ELBv2 calls go through the same account gateway as the AWS API servers, so
 * faults injected there (throttling, 500s, latency) hit the controller too — it shares the account's limits.
 */
export function startLbc(options: LbcOptions): Lbc {
  const { store, clock, alb } = options;
  const clusterName = options.clusterName ?? 'lab';
  const account = options.account ?? awsAccount(alb);
  let enabled = options.webhookEnabled ?? true;
  let active = true;
  try {
    store.create('MutatingWebhookConfiguration', options.webhookConfiguration ?? mutatingWebhookConfiguration());
  } catch (e) {
    if (!(e instanceof StoreError && e.code === 409)) throw e;
  }
  // Admission hooks cannot be removed from the store: a stopped controller's hooks become inert.
  installWebhooks(store, { enabled: () => enabled, active: () => active, describeTargetGroup: (q) => alb.lookupTargetGroup(q) });
  const ingress = new IngressController(store, clock, account, clusterName);
  const tgb = new TgbController(store, clock, account);
  const service = new ServiceController(store, clock, account, clusterName);
  tgb.start();
  ingress.start();
  service.start();
  return {
    setWebhookEnabled: (v) => {
      enabled = v;
    },
    get webhookEnabled() {
      return enabled;
    },
    clusterName,
    stop: async () => {
      active = false;
      await Promise.all([ingress.stop(), service.stop(), tgb.stop()]);
    },
  };
}
