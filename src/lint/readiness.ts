import { GATE_LABEL, type NamespaceModel } from '../manifests/model.js';
import { deploymentName, routedDeployments, type RoutedDeployment } from './routes.js';
import type { RawFinding, RuleContext, Severity } from './types.js';

/**
 * Rules about new pods being counted Ready before the ALB routes to them (DESIGN.md, "Why rollouts behind an ALB
 * drop requests", 1): the readiness-gate label, the ip target type the gates need, and the readinessProbe.
 */

const NEW_POD_RACE =
  'during a rollout Kubernetes deletes an old pod as soon as a new pod is Ready, while the new target is still `initial` in the target group (registration and health checks take tens of seconds) — requests meet draining old targets and not-yet-healthy new ones: 502/503';

export function readinessRules(ctx: RuleContext): RawFinding[] {
  return [...gateLabel(ctx), ...targetTypeIp(ctx), ...readinessProbe(ctx)];
}

function gateLabel({ model, options }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  const byNamespace = new Map<string, RoutedDeployment[]>();
  for (const rd of routedDeployments(model)) {
    if (!rd.routes.some((r) => r.targetType === 'ip')) continue;
    const list = byNamespace.get(rd.deployment.namespace) ?? [];
    list.push(rd);
    byNamespace.set(rd.deployment.namespace, list);
  }
  for (const [name, routed] of byNamespace) {
    const ns = model.namespaces.find((n) => n.name === name) as NamespaceModel | undefined;
    if (ns?.gateLabel) continue;
    const workloads = routed.map((r) => deploymentName(r.deployment)).join(', ');
    const severity: Severity = options.readinessGates === 'require' ? 'error' : 'info';
    const labelFix = `add the label \`${GATE_LABEL}: enabled\` to namespace ${name}`;
    const why = `namespace ${name} lacks the label ${GATE_LABEL}=enabled, so the AWS Load Balancer Controller injects no readiness gates into the pods of ${workloads}: ${NEW_POD_RACE}`;
    const message =
      options.readinessGates === 'inject'
        ? `${why}. \`alb-rollout deploy\` (readiness-gates: inject) adds the label before any workload is applied; applied any other way, the pods get no gates`
        : options.readinessGates === 'off'
          ? `${why}. Readiness gates are turned off for this run (readiness-gates: off), so nothing protects new pods`
          : why;
    const fix =
      `${labelFix}${ns?.loaded ? ' (metadata.labels)' : ` — it is not in these manifests, so label the existing namespace: kubectl label namespace ${name} ${GATE_LABEL}=enabled`}. ` +
      'Gates are added only when a pod is created, after the TargetGroupBinding exists: pods running now get them at their next rollout';
    const deployments = routed.map((r) => r.deployment.loaded);
    if (ns?.loaded) {
      out.push({ rule: 'readiness-gate-label', severity, message, fix, at: ns.loaded, path: ['metadata', 'labels'], alsoAnnotatedOn: deployments });
    } else {
      const [first, ...rest] = deployments;
      if (!first) continue;
      out.push({
        rule: 'readiness-gate-label',
        severity,
        message,
        fix,
        at: first,
        path: ['metadata', 'namespace'],
        object: { kind: 'Namespace', namespace: '', name },
        alsoAnnotatedOn: rest,
      });
    }
  }
  return out;
}

function targetTypeIp({ model, options }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  const gateLabelled = (ns: string): boolean => model.namespaces.some((n) => n.name === ns && n.gateLabel);
  const severityFor = (ns: string): Severity => (gateLabelled(ns) || options.readinessGates !== 'off' ? 'error' : 'warning');
  for (const tg of model.targetGroups) {
    if (tg.targetType === 'ip' || tg.deployments.length === 0) continue;
    const workloads = tg.deployments.map((d) => `${d.namespace}/${d.name}`).join(', ');
    const source = tg.targetTypeSource;
    const value = source ? `target-type ${tg.targetType} (from ${source.from.ref.kind} ${source.from.ref.name})` : "target-type instance (the controller's default, no annotation)";
    const where = source?.key === 'IngressClassParams.spec.targetType' ? `spec.targetType of IngressClassParams ${source.from.ref.name}` : `the annotation alb.ingress.kubernetes.io/target-type: ip on Ingress ${tg.ingress.namespace}/${tg.ingress.name} (or on Service ${tg.service.name}, which wins)`;
    out.push({
      rule: 'target-type-ip',
      severity: severityFor(tg.service.namespace),
      message: `target group ${tg.key} uses ${value}: the controller injects readiness gates only for ip targets, so the pods of ${workloads} get none — ${NEW_POD_RACE}`,
      fix: `set ${where}. ip targets also need no NodePort. Changing the target type makes the controller create a new target group and delete the old one (open connections are dropped), so switch it outside peak traffic`,
      at: source?.from ?? tg.ingress.loaded,
      path: source ? (source.key === 'IngressClassParams.spec.targetType' ? ['spec', 'targetType'] : ['metadata', 'annotations', source.key]) : ['metadata', 'annotations'],
    });
  }
  for (const b of model.bindings) {
    if (b.targetType !== 'instance' || b.deployments.length === 0) continue;
    out.push({
      rule: 'target-type-ip',
      severity: severityFor(b.namespace),
      message: `TargetGroupBinding ${b.namespace}/${b.name} has targetType instance: the controller injects readiness gates only for ip bindings, so the pods of ${b.deployments.map((d) => `${d.namespace}/${d.name}`).join(', ')} get none — ${NEW_POD_RACE}`,
      fix: 'bind an ip target group instead (spec.targetType: ip; targetType is immutable, so create a new target group and binding and move traffic with weighted forwarding)',
      at: b.loaded,
      path: ['spec', 'targetType'],
    });
  }
  return out;
}

function readinessProbe({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const rd of routedDeployments(model)) {
    for (const c of rd.serving) {
      if (c.readinessProbe) continue;
      const port = rd.routes.find((r) => r.servicePort)?.servicePort?.targetPort ?? 'its serving port';
      out.push({
        rule: 'readiness-probe',
        severity: 'error',
        message: `${deploymentName(rd.deployment)} container ${c.name} has no readinessProbe: a new pod counts as Ready the moment the container starts, before the app listens. It is registered as a target and old pods are removed while it still refuses connections — 502, and with readiness gates the rollout leans on the ALB health check alone`,
        fix: `add a readinessProbe to container ${c.name}, e.g. readinessProbe: {httpGet: {path: /healthz, port: ${port}}, periodSeconds: 5} — the same path as the ALB health check (alb.ingress.kubernetes.io/healthcheck-path)`,
        at: rd.deployment.loaded,
        path: c.path,
      });
    }
  }
  return out;
}
