import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { PlanRoute } from '../phases.js';
import type { BindingInfo, CheckResult } from './result.js';

/** What the routing wait sees: the Ingresses, TargetGroupBindings and Ingress events of the routes' namespaces. */
export interface RoutingSnapshot {
  ingresses: KubeObject[];
  bindings: KubeObject[];
  events: KubeObject[];
  /** Services by "ns/name" (the set's), to match a binding's named port with an Ingress's numbered one. */
  services: Map<string, KubeObject>;
  /** When the run started (ms): older controller events are not about this run. */
  startedAt: number;
}

export interface RoutingView {
  result: CheckResult;
  /** Ingress "ns/name" → ALB hostname, for those that have one. */
  hostnames: Map<string, string>;
  /** One per route, once every route has its binding. */
  bindings: BindingInfo[];
}

const TRANSIENT_CONTROLLER_ERROR = /throttl|rate exceeded|requestlimitexceeded|toomanyrequests|internalfailure|internal ?error|serviceunavailable|service unavailable|timed out|timeout|connection reset|EOF/i;

/** Every Ingress has an ALB hostname and every route its TargetGroupBinding (ip, when gates are used). */
export function checkRouting(routes: PlanRoute[], snap: RoutingSnapshot, readinessGates: 'inject' | 'require' | 'off'): RoutingView {
  const pending: string[] = [];
  const hostnames = new Map<string, string>();
  const found: BindingInfo[] = [];
  const failed = (message: string): RoutingView => ({ hostnames, bindings: [], result: { done: false, failed: true, message } });
  const ingressByKey = new Map(snap.ingresses.map((i) => [`${i.metadata.namespace ?? ''}/${i.metadata.name}`, i]));
  for (const r of routes) {
    if (r.ingress) {
      const ingName = `${r.ingress.namespace}/${r.ingress.name}`;
      const ing = ingressByKey.get(ingName);
      const verdict = controllerVerdict(snap.events, r.ingress, snap.startedAt);
      if (verdict?.permanent) {
        return failed(
              `expected the AWS Load Balancer Controller to build an ALB for Ingress ${ingName}, but it rejected it: ${verdict.reason} — ${verdict.message}. ` +
              `Fix the Ingress/Service (annotations, backend Service type and port) as the message says, then re-run; \`kubectl describe ingress -n ${r.ingress.namespace} ${r.ingress.name}\` shows the events.`,
        );
      }
      const hostname = (((ing?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined)?.[0]?.hostname;
      if (typeof hostname !== 'string') {
        pending.push(`ALB hostname for Ingress ${ingName}${verdict ? ` (the controller's last attempt failed, it retries: ${verdict.reason} — ${verdict.message})` : ing ? '' : ' (Ingress not seen yet)'}`);
      } else hostnames.set(ingName, hostname);
    }
    const tgb = r.binding
      ? snap.bindings.find((b) => b.metadata.namespace === r.binding?.namespace && b.metadata.name === r.binding?.name)
      : r.nlb
        ? snap.bindings.find((b) => serviceStackMatches(b, r.service) && bindingMatches(b, r, snap.services))
        : snap.bindings.find((b) => bindingMatches(b, r, snap.services) && !isUserBinding(b));
    if (!tgb) {
      pending.push(
        r.binding
          ? `TargetGroupBinding ${r.binding.namespace}/${r.binding.name} (yours) not seen yet`
          : `TargetGroupBinding for Service ${r.service.namespace}/${r.service.name} port ${r.port} (created by the controller with the ${r.nlb ? 'NLB' : 'ALB'})`,
      );
      continue;
    }
    const arn = String(((tgb.spec ?? {}) as JsonObject).targetGroupARN ?? '');
    if (r.binding && arn === '') {
      return failed(`expected TargetGroupBinding ${r.binding.namespace}/${r.binding.name} to name a target group, but spec.targetGroupARN is empty. Fix: set spec.targetGroupARN to the ARN of the target group (aws elbv2 describe-target-groups), then re-run.`);
    }
    const spec = (tgb.spec ?? {}) as JsonObject;
    if (spec.targetType !== 'ip' && readinessGates !== 'off') {
      return failed(
        `expected an ip TargetGroupBinding for Service ${r.service.namespace}/${r.service.name}, but ${tgb.metadata.name} has targetType ${String(spec.targetType)}: readiness gates only work with ip targets. Fix: annotate the Ingress (or Service) with alb.ingress.kubernetes.io/target-type: ip, or run with --readiness-gates off.`,
      );
    }
    found.push({ route: r, name: tgb.metadata.name, arn: String(spec.targetGroupARN ?? ''), targetType: String(spec.targetType ?? '') });
  }
  const done = pending.length === 0;
  return { hostnames, bindings: done ? found : [], result: { done, message: pending.join('; ') } };
}

/**
 * The controller's latest verdict on an Ingress since this run started: a FailedBuildModel (the model cannot be built
 * from these objects: permanent until they change) or a FailedDeployModel (permanent unless it is an AWS hiccup such
 * as throttling), unless a later SuccessfullyReconciled supersedes it.
 */
export function controllerVerdict(events: KubeObject[], ingress: { namespace: string; name: string }, startedAt: number): { reason: string; message: string; permanent: boolean } | undefined {
  const when = (e: KubeObject): number => Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0)) || 0;
  const mine = events.filter(
    (e) =>
      (e.involvedObject as JsonObject | undefined)?.name === ingress.name &&
      (e.metadata.namespace ?? '') === ingress.namespace &&
      // Event times have whole seconds: allow the second the run started in.
      when(e) >= startedAt - 2000,
  );
  const failures = mine.filter((e) => e.reason === 'FailedBuildModel' || e.reason === 'FailedDeployModel').sort((a, b) => when(b) - when(a));
  const latest = failures[0];
  if (!latest) return undefined;
  const success = mine.find((e) => e.reason === 'SuccessfullyReconciled' && when(e) > when(latest));
  if (success) return undefined;
  const message = String(latest.message ?? '');
  const permanent = latest.reason === 'FailedBuildModel' || !TRANSIENT_CONTROLLER_ERROR.test(message);
  return { reason: String(latest.reason), message, permanent };
}

/** Made by the user (not by the controller for an Ingress or a Service): the controller labels its own with its stack. */
const labelsOf = (tgb: KubeObject): string[] => Object.keys(tgb.metadata.labels ?? {});

export function isUserBinding(tgb: KubeObject): boolean {
  return !Object.keys(tgb.metadata.labels ?? {}).some((k) => k.startsWith('ingress.k8s.aws/') || k.startsWith('service.k8s.aws/'));
}

/** The controller labels the bindings of a Service's NLB with the Service. */
function serviceStackMatches(tgb: KubeObject, service: { namespace: string; name: string }): boolean {
  const labels = tgb.metadata.labels ?? {};
  return labels['service.k8s.aws/stack-namespace'] === service.namespace && labels['service.k8s.aws/stack-name'] === service.name;
}

/** The controller's stack labels on a binding name the Ingress (implicit group) or the IngressGroup it was made for. */
function stackMatches(tgb: KubeObject, ingress: NonNullable<PlanRoute['ingress']>): boolean {
  const labels = tgb.metadata.labels ?? {};
  if (labels['ingress.k8s.aws/stack'] !== undefined) return labels['ingress.k8s.aws/stack'] === ingress.group;
  if (labels['ingress.k8s.aws/stack-name'] !== undefined) return !ingress.group && labels['ingress.k8s.aws/stack-name'] === ingress.name && labels['ingress.k8s.aws/stack-namespace'] === ingress.namespace;
  return true;
}

/** A binding serves a route when it names the route's Service and port (by number or by name, either way round). */
export function bindingMatches(tgb: KubeObject, r: Pick<PlanRoute, 'service' | 'port' | 'ingress' | 'nlb'>, services: Map<string, KubeObject>): boolean {
  const spec = (tgb.spec ?? {}) as JsonObject;
  const ref = (spec.serviceRef ?? {}) as JsonObject;
  if ((tgb.metadata.namespace ?? '') !== r.service.namespace || ref.name !== r.service.name) return false;
  if (r.ingress && !stackMatches(tgb, r.ingress)) return false;
  if (!r.ingress && !r.nlb && labelsOf(tgb).some((k) => k.startsWith('service.k8s.aws/'))) return false;
  if (String(ref.port) === String(r.port)) return true;
  const svc = services.get(`${r.service.namespace}/${r.service.name}`);
  const ports = ((svc?.spec as JsonObject | undefined)?.ports ?? []) as JsonObject[];
  const port = ports.find((p) => String(p.port) === String(r.port) || p.name === r.port);
  return port !== undefined && (String(port.port) === String(ref.port) || port.name === ref.port);
}
