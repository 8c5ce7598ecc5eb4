import {
  ALB_PREFIX,
  findServicePort,
  groupBy,
  obj,
  selectorMatches,
  servingContainers,
  type ServiceModel,
} from '../manifests/model.js';
import type { JsonObject, JsonValue, LoadedObject } from '../manifests/types.js';
import { deploymentName } from './routes.js';
import type { RawFinding, RuleContext } from './types.js';

/** Rules about the path from the Ingress to the pods: backends that exist, selectors that select, health checks that agree. */

export function routingRules(ctx: RuleContext): RawFinding[] {
  return [...backendMissing(ctx), ...selectorMismatch(ctx), ...healthcheckPath(ctx)];
}

function backendMissing({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  const services = new Map(model.services.map((s) => [`${s.namespace}/${s.name}`, s]));
  for (const ing of model.ingresses.filter((i) => i.isAlb)) {
    for (const b of ing.backends) {
      const where = b.viaAction ? `forward action ${b.viaAction}` : 'backend';
      const path = b.viaAction ? ['metadata', 'annotations', `${ALB_PREFIX}actions.${b.viaAction}`] : [...b.path, 'service', 'name'];
      const svc = services.get(`${ing.namespace}/${b.serviceName}`);
      const portText = b.port.number !== undefined ? `port ${b.port.number}` : b.port.name !== undefined ? `port "${b.port.name}"` : 'no port';
      if (!svc) {
        out.push({
          rule: 'backend-missing',
          severity: 'warning',
          message: `Ingress ${ing.namespace}/${ing.name} ${where} names Service ${b.serviceName}, which is not in these manifests. It may already exist in the cluster; if it does not, the controller cannot build the load balancer for this Ingress (its whole group stops reconciling) and requests for this path get 503`,
          fix: `add Service ${ing.namespace}/${b.serviceName} to the manifests, check the name for a typo, or confirm it exists: kubectl -n ${ing.namespace} get service ${b.serviceName}`,
          at: ing.loaded,
          path,
        });
        continue;
      }
      if (findServicePort(svc, b.port)) continue;
      const ports = svc.ports.map((p) => (p.name ? `${p.port} (${p.name})` : String(p.port))).join(', ') || 'none';
      out.push({
        rule: 'backend-missing',
        severity: 'error',
        message: `Ingress ${ing.namespace}/${ing.name} ${where} sends ${portText} to Service ${svc.name}, which has no such port (it has: ${ports}): the controller fails to build the model ("unable to find port") and no target group for this Ingress is updated — a renamed port on a live binding deregisters every target (503)`,
        fix: `use one of Service ${svc.name}'s ports in the Ingress (service.port.number or service.port.name), or add the port to the Service; when renaming a port, keep the old one until the Ingress points at the new one`,
        at: ing.loaded,
        path: b.viaAction ? path : [...b.path, 'service', 'port'],
      });
    }
  }
  for (const tgb of model.bindings) {
    const portPath = ['spec', 'serviceRef', 'port'];
    if (!tgb.service) {
      out.push({
        rule: 'backend-missing',
        severity: 'warning',
        message: `TargetGroupBinding ${tgb.namespace}/${tgb.name} refers to Service ${tgb.serviceName}, which is not in these manifests. If it does not exist in the cluster, the controller deregisters every target of the target group (BackendNotFound) — 503`,
        fix: `add Service ${tgb.namespace}/${tgb.serviceName} to the manifests or confirm it exists: kubectl -n ${tgb.namespace} get service ${tgb.serviceName}`,
        at: tgb.loaded,
        path: ['spec', 'serviceRef', 'name'],
      });
      continue;
    }
    if (tgb.port === undefined) continue;
    const port = typeof tgb.port === 'number' ? { number: tgb.port } : { name: tgb.port };
    if (findServicePort(tgb.service, port)) continue;
    out.push({
      rule: 'backend-missing',
      severity: 'error',
      message: `TargetGroupBinding ${tgb.namespace}/${tgb.name} refers to port ${String(tgb.port)} of Service ${tgb.serviceName}, which has no such port: the controller reports "unable to find port" and deregisters every target of the target group — 503`,
      fix: `set spec.serviceRef.port to one of the Service's port numbers or names (${tgb.service.ports.map((p) => p.name ?? p.port).join(', ') || 'it has none'})`,
      at: tgb.loaded,
      path: portPath,
    });
  }
  return out;
}

function selectorMismatch({ model, set }: RuleContext): RawFinding[] {
  const routed = new Map<ServiceModel, string>();
  for (const tg of model.targetGroups) if (!routed.has(tg.service)) routed.set(tg.service, `Ingress ${tg.ingress.namespace}/${tg.ingress.name}`);
  for (const b of model.bindings) if (b.service && !routed.has(b.service)) routed.set(b.service, `TargetGroupBinding ${b.namespace}/${b.name}`);
  const templates = groupBy(podTemplates(set.objects), (t) => t.object.ref.namespace);
  const out: RawFinding[] = [];
  for (const [svc, via] of routed) {
    if (svc.type === 'ExternalName') continue;
    const selector = svc.selector ?? {};
    const inNamespace = templates.get(svc.namespace) ?? [];
    if (Object.keys(selector).length === 0) {
      out.push({
        rule: 'selector-mismatch',
        severity: 'warning',
        message: `Service ${svc.namespace}/${svc.name} (routed by ${via}) has no selector: its endpoints must be managed by hand, and the controller never injects readiness gates for it (it matches pods by the Service selector)`,
        fix: `give Service ${svc.name} a spec.selector with the pod template labels of the workload it fronts`,
        at: svc.loaded,
        path: ['spec'],
      });
      continue;
    }
    if (inNamespace.some((t) => selectorMatches(selector, t.labels))) continue;
    const wanted = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
    const nearest = nearestTemplate(selector, inNamespace);
    const hint = nearest ? ` The closest is ${nearest.object.ref.kind} ${nearest.object.ref.name} with ${formatLabels(nearest.labels, Object.keys(selector))}` : '';
    const noWorkloads = inNamespace.length === 0;
    out.push({
      rule: 'selector-mismatch',
      severity: noWorkloads ? 'warning' : 'error',
      message:
        `Service ${svc.namespace}/${svc.name} (routed by ${via}) selects ${wanted}, but no pod template in namespace ${svc.namespace} in these manifests carries those labels: the Service has no endpoints, the target group no targets, and the ALB answers 503.` +
        (noWorkloads ? ' These manifests hold no workload in that namespace; if the pods are deployed from elsewhere, check their labels there' : hint),
      fix: `make spec.selector of Service ${svc.name} a subset of the pod template labels (spec.template.metadata.labels) of the workload it fronts`,
      at: svc.loaded,
      path: ['spec', 'selector'],
    });
  }
  return out;
}

interface PodTemplate {
  object: LoadedObject;
  labels: Record<string, string>;
}

/** Pod labels of every workload kind in the manifests (not only Deployments: a StatefulSet behind an Ingress is fine). */
function podTemplates(objects: LoadedObject[]): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const o of objects) {
    const spec = obj(o.object.spec);
    let labels: JsonValue | undefined;
    switch (o.ref.kind) {
      case 'Pod':
        labels = o.object.metadata.labels as JsonObject | undefined;
        break;
      case 'CronJob':
        labels = obj(obj(obj(obj(spec.jobTemplate).spec).template).metadata).labels;
        break;
      case 'Deployment':
      case 'Rollout':
      case 'StatefulSet':
      case 'DaemonSet':
      case 'ReplicaSet':
      case 'Job':
        labels = obj(obj(spec.template).metadata).labels;
        break;
      default:
        continue;
    }
    const record: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(labels))) if (typeof v === 'string') record[k] = v;
    out.push({ object: o, labels: record });
  }
  return out;
}

function nearestTemplate(selector: Record<string, string>, templates: PodTemplate[]): PodTemplate | undefined {
  let best: PodTemplate | undefined;
  let bestScore = 0;
  for (const t of templates) {
    const score = Object.keys(selector).filter((k) => k in t.labels).length;
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

function formatLabels(labels: Record<string, string>, keys: string[]): string {
  const shown = keys.filter((k) => k in labels).map((k) => `${k}=${labels[k]}`);
  return shown.length > 0 ? shown.join(',') : 'none of the selector keys';
}

function healthcheckPath({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const tg of model.targetGroups) {
    const protocol = tg.healthCheck.protocol.toUpperCase();
    if (protocol !== 'HTTP' && protocol !== 'HTTPS') continue;
    for (const d of tg.deployments) {
      for (const c of servingContainers(d, tg.servicePort)) {
        const probe = c.readinessProbe;
        if (!probe || probe.handler !== 'httpGet' || probe.path === undefined) continue;
        if (probe.path === tg.healthCheck.path) continue;
        const source = tg.healthCheck.pathSource;
        const hcText = source ? `${tg.healthCheck.path} (${source.from.ref.kind} annotation)` : `${tg.healthCheck.path} (the controller's default)`;
        out.push({
          rule: 'healthcheck-path',
          severity: 'warning',
          message:
            `target group ${tg.key} health-checks ${hcText}, but ${deploymentName(d)} container ${c.name} reports readiness on ${probe.path}: ` +
            'a pod can pass one and fail the other — Ready in Kubernetes but unhealthy in the ALB (with readiness gates the rollout stalls until the progress deadline), or healthy in the ALB while Kubernetes still considers it not ready',
          fix: `set ${ALB_PREFIX}healthcheck-path: ${probe.path} on ${source ? `${source.from.ref.kind} ${source.from.ref.name}` : `Ingress ${tg.ingress.name} (or Service ${tg.service.name}, which wins)`}, or point the readinessProbe at ${tg.healthCheck.path}`,
          at: source?.from ?? tg.ingress.loaded,
          path: source ? ['metadata', 'annotations', source.key] : ['metadata', 'annotations'],
        });
      }
    }
  }
  return out;
}
