import type { TargetGroup } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { ClusterAccess } from '../cluster.js';
import { AwsApiError } from '../alb/errors.js';
import { StoreError } from '../store.js';
import { GATE_INJECT_LABEL, GATE_PREFIX, LEGACY_GATE_PREFIX, gateConditionType, selectorMatches } from './annotations.js';
import { LbcAwsError, a, o, s } from './util.js';

/**
 * LBC's admission webhooks, as store admission hooks:
 *
 * - `mpod.elbv2.k8s.aws` (Pod CREATE, failurePolicy Ignore): the readiness-gate injection of
 *   pkg/inject/pod_readiness/pod_readiness_gate.go — namespace labelled `elbv2.k8s.aws/pod-readiness-gate-inject: enabled`;
 *   for each TargetGroupBinding in the pod's namespace with `spec.targetType: ip` whose Service exists and whose
 *   non-empty selector matches the pod's labels, add `target-health.elbv2.k8s.aws/<tgb>`; when any gate is added,
 *   legacy `target-health.alb.ingress.k8s.aws*` gates are removed. Pods of the controller itself are skipped
 *   (the default objectSelector). When the webhook is "down" (`enabled() === false`) or its
 *   MutatingWebhookConfiguration is gone, pods are admitted unchanged — what failurePolicy Ignore does.
 * - `mtargetgroupbinding`/`vtargetgroupbinding` (TargetGroupBinding CREATE/UPDATE, failurePolicy Fail): ARN or name
 *   required; on CREATE `targetGroupName` is resolved to `targetGroupARN`, and a missing `targetType` (and with it
 *   `ipAddressType`, `vpcID`, `targetGroupProtocol`) is defaulted from DescribeTargetGroups — a user-made TGB needs
 *   only the ARN and the serviceRef; one ARN per TGB (unless every TGB on it sets `multiClusterTargetGroup`);
 *   nodeSelector only for instance targets; immutable fields. Lab shortcut: the target group is looked up only when
 *   the name or `targetType` must be resolved (LBC also looks it up to default ipAddressType/vpcID/protocol;
 *   the lab then defaults ipAddressType to ipv4), and the lookup bypasses the account's injected faults.
 */

export const WEBHOOK_CONFIGURATION_NAME = 'aws-load-balancer-webhook';

export function mutatingWebhookConfiguration(): KubeObject {
  const service = (path: string): JsonObject => ({ service: { name: 'aws-load-balancer-webhook-service', namespace: 'kube-system', path, port: 443 } });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels: { 'app.kubernetes.io/name': 'aws-load-balancer-controller' } },
    webhooks: [
      {
        name: 'mpod.elbv2.k8s.aws',
        admissionReviewVersions: ['v1'],
        clientConfig: service('/mutate-v1-pod'),
        failurePolicy: 'Ignore',
        matchPolicy: 'Equivalent',
        namespaceSelector: { matchExpressions: [{ key: GATE_INJECT_LABEL, operator: 'In', values: ['enabled'] }] },
        objectSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['aws-load-balancer-controller'] }] },
        reinvocationPolicy: 'Never',
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: '*' }],
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
      {
        name: 'mtargetgroupbinding.elbv2.k8s.aws',
        admissionReviewVersions: ['v1beta1'],
        clientConfig: service('/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding'),
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        namespaceSelector: {},
        objectSelector: {},
        reinvocationPolicy: 'Never',
        rules: [{ apiGroups: ['elbv2.k8s.aws'], apiVersions: ['v1beta1'], operations: ['CREATE', 'UPDATE'], resources: ['targetgroupbindings'], scope: '*' }],
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
    ],
  };
}

/** The readiness gates LBC would add to this pod (in TGB name order), or [] when injection does not apply. */
export function gatesForPod(store: ClusterAccess, pod: KubeObject, namespace: string): string[] {
  const ns = store.get('Namespace', '', namespace);
  if (ns?.metadata.labels?.[GATE_INJECT_LABEL] !== 'enabled') return [];
  if (pod.metadata.labels?.['app.kubernetes.io/name'] === 'aws-load-balancer-controller') return [];
  const out: string[] = [];
  for (const tgb of store.list('TargetGroupBinding', namespace).items) {
    const spec = o(tgb.spec);
    if (s(spec.targetType) !== 'ip') continue;
    const svc = store.get('Service', namespace, s(o(spec.serviceRef).name));
    if (!svc) continue;
    if (!selectorMatches(o(o(svc.spec).selector), pod.metadata.labels)) continue;
    out.push(gateConditionType(tgb.metadata.name));
  }
  return out;
}

export interface WebhookOptions {
  enabled: () => boolean;
  active: () => boolean;
  /** DescribeTargetGroups by ARN or name (throws the AWS error); without it, TGBs must name ARN and targetType. */
  describeTargetGroup?: (q: { arn?: string; name?: string }) => TargetGroup;
}

export function installWebhooks(store: ClusterAccess, opts: WebhookOptions): void {
  store.addAdmissionHook('Pod', (pod, operation) => {
    if (operation !== 'CREATE' || !opts.active() || !opts.enabled()) return;
    if (!store.get('MutatingWebhookConfiguration', '', WEBHOOK_CONFIGURATION_NAME)) return;
    const namespace = pod.metadata.namespace ?? 'default';
    let gates: string[];
    try {
      gates = gatesForPod(store, pod, namespace);
    } catch {
      return; // a webhook error with failurePolicy Ignore admits the pod as is
    }
    if (gates.length === 0) return;
    const spec = o(pod.spec);
    const existing = a(spec.readinessGates)
      .map((g) => o(g))
      .filter((g) => !s(g.conditionType).startsWith(LEGACY_GATE_PREFIX));
    for (const g of gates) if (!existing.some((e) => s(e.conditionType) === g)) existing.push({ conditionType: g });
    spec.readinessGates = existing;
    pod.spec = spec;
  });

  store.addAdmissionHook('TargetGroupBinding', (tgb, operation, old) => {
    if (!opts.active()) return;
    const spec = o(tgb.spec);
    if (!s(spec.targetGroupARN) && !s(spec.targetGroupName)) {
      throw denied('mtargetgroupbinding.elbv2.k8s.aws', 'must provide either TargetGroupARN or TargetGroupName');
    }
    // The mutator defaults on CREATE and UPDATE: omitted defaulted fields keep their values (an apply that omits
    // them is not a change).
    if (operation === 'UPDATE' && old) {
      const before = o(old.spec);
      for (const f of ['targetType', 'ipAddressType', 'vpcID', 'targetGroupARN', 'targetGroupProtocol']) if (spec[f] === undefined && before[f] !== undefined) spec[f] = before[f];
    }
    if (operation === 'CREATE' && opts.describeTargetGroup) {
      const lookup = (q: { arn?: string; name?: string }): TargetGroup => {
        try {
          return opts.describeTargetGroup!(q);
        } catch (e) {
          throw e instanceof AwsApiError ? new LbcAwsError('DescribeTargetGroups', e) : e;
        }
      };
      if (!s(spec.targetGroupARN)) {
        try {
          spec.targetGroupARN = lookup({ name: s(spec.targetGroupName) }).TargetGroupArn ?? '';
        } catch (e) {
          throw denied('mtargetgroupbinding.elbv2.k8s.aws', (e as Error).message);
        }
      }
      if (spec.targetType === undefined || spec.targetType === null) {
        let tg: TargetGroup;
        try {
          tg = lookup({ arn: s(spec.targetGroupARN) });
        } catch (e) {
          throw denied('mtargetgroupbinding.elbv2.k8s.aws', `couldn't determine TargetType: ${(e as Error).message}`);
        }
        if (tg.TargetType !== 'ip' && tg.TargetType !== 'instance') throw denied('mtargetgroupbinding.elbv2.k8s.aws', `unsupported TargetType: ${String(tg.TargetType)}`);
        spec.targetType = tg.TargetType;
        if (spec.ipAddressType === undefined) spec.ipAddressType = tg.IpAddressType === 'ipv6' ? 'ipv6' : 'ipv4';
        if (spec.vpcID === undefined && tg.VpcId) spec.vpcID = tg.VpcId;
        if (spec.targetGroupProtocol === undefined && tg.Protocol) spec.targetGroupProtocol = tg.Protocol;
      }
    }
    if (spec.targetType === undefined || spec.targetType === null) {
      throw denied('vtargetgroupbinding.elbv2.k8s.aws', 'TargetGroupBinding must specify these fields: spec.targetType');
    }
    const arn = s(spec.targetGroupARN);
    if (arn) {
      const others = store.list('TargetGroupBinding').items.filter((t) => t.metadata.uid !== tgb.metadata.uid && !(t.metadata.namespace === tgb.metadata.namespace && t.metadata.name === tgb.metadata.name) && s(o(t.spec).targetGroupARN) === arn);
      const multi = others.length > 0 && spec.multiClusterTargetGroup === true && others.every((t) => o(t.spec).multiClusterTargetGroup === true);
      if (others.length > 0 && !multi) {
        throw denied(
          'vtargetgroupbinding.elbv2.k8s.aws',
          `TargetGroup ${arn} is already bound to following TargetGroupBindings [${others.map((t) => `${t.metadata.namespace}/${t.metadata.name}`).join(' ')}]. Please enable MultiCluster mode on all TargetGroupBindings referencing ${arn} or choose a different Target Group ARN.`,
        );
      }
    }
    if (s(spec.targetType) === 'ip' && spec.nodeSelector !== undefined) {
      throw denied('vtargetgroupbinding.elbv2.k8s.aws', 'TargetGroupBinding cannot set NodeSelector when TargetType is ip');
    }
    if (!spec.ipAddressType) spec.ipAddressType = 'ipv4';
    if (operation === 'UPDATE' && old) {
      const before = o(old.spec);
      const changed = ['targetGroupARN', 'targetType', 'ipAddressType', 'vpcID'].filter((f) => before[f] !== undefined && s(before[f]) !== s(spec[f]));
      if (changed.length > 0) {
        throw denied('vtargetgroupbinding.elbv2.k8s.aws', `TargetGroupBinding update may not change these immutable fields: ${changed.map((f) => `spec.${f}`).join(',')}`);
      }
    }
    tgb.spec = spec;
  });
}

function denied(webhook: string, message: string): StoreError {
  return new StoreError(400, 'BadRequest', `admission webhook "${webhook}" denied the request: ${message}`);
}

export { GATE_PREFIX };
