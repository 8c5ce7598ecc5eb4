import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lintManifests, RULES, type Finding, type LintOptions, type RuleId } from '../../src/lint/index.js';
import { buildModel } from '../../src/manifests/model.js';
import { app, loadExample, setOf, type AppKnobs } from '../fixtures/manifests.js';

const REQUIRE: LintOptions = { readinessGates: 'require', shutdownSeconds: 5 };

function lint(knobs: AppKnobs, options: Partial<LintOptions> = {}): Finding[] {
  return lintManifests(setOf(app(knobs)), { ...REQUIRE, ...options }).findings;
}

function only(findings: Finding[], rule: RuleId): Finding[] {
  return findings.filter((f) => f.rule === rule);
}

function one(findings: Finding[], rule: RuleId): Finding {
  const matching = only(findings, rule);
  assert.equal(matching.length, 1, `expected one ${rule} finding, got ${JSON.stringify(findings, null, 1)}`);
  return matching[0] as Finding;
}

describe('lint: the 2048 examples', () => {
  it('flags the naive manifests with the right files and lines', async () => {
    const findings = lintManifests(await loadExample('naive'), REQUIRE).findings;
    const at = (rule: RuleId): string => {
      const f = one(findings, rule);
      assert.equal(f.severity, 'error', rule);
      return `${f.file}:${f.line}`;
    };
    assert.equal(at('readiness-gate-label'), 'examples/2048/naive/1-namespace.yaml:5');
    assert.equal(at('prestop-missing'), 'examples/2048/naive/2-deployment.yaml:22');
    assert.equal(at('deregistration-delay'), 'examples/2048/naive/4-ingress.yaml:6');
    assert.match(one(findings, 'deregistration-delay').message, /300 s/);
    assert.match(one(findings, 'deregistration-delay').fix, /does not reset/);
  });

  it('finds no errors in the safe manifests, whatever the readiness-gate mode', async () => {
    const set = await loadExample('safe');
    for (const readinessGates of ['inject', 'require', 'off'] as const) {
      assert.deepEqual(lintManifests(set, { readinessGates, shutdownSeconds: 5 }).findings, [], readinessGates);
    }
  });

  it('the safe app fixture is clean (the baseline the rule tests below change one thing of)', () => {
    assert.deepEqual(lint({}), []);
  });

  it('sorts findings by file, line, rule and lists every rule id once', () => {
    const findings = lint({ namespaceLabels: '', preStop: '', readinessProbe: '', ingressAnnotations: 'alb.ingress.kubernetes.io/scheme: internal' });
    const keys = findings.map((f) => `${f.file}\u0000${String(f.line).padStart(6, '0')}\u0000${f.rule}`);
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(new Set(RULES.map((r) => r.id)).size, 14);
  });
});

describe('lint rules', () => {
  it('readiness-gate-label: error with require, info with inject or off; silent when labelled or not ip', () => {
    const f = one(lint({ namespaceLabels: '' }), 'readiness-gate-label');
    assert.deepEqual([f.severity, f.file, f.line, f.object], ['error', 'ns.yaml', 3, { kind: 'Namespace', namespace: '', name: 'shop' }]);
    assert.equal(one(lint({ namespaceLabels: '' }, { readinessGates: 'inject' }), 'readiness-gate-label').severity, 'info');
    assert.match(one(lint({ namespaceLabels: '' }, { readinessGates: 'inject' }), 'readiness-gate-label').message, /deploy.*adds the label/);
    assert.equal(one(lint({ namespaceLabels: '' }, { readinessGates: 'off' }), 'readiness-gate-label').severity, 'info');
    assert.deepEqual(only(lint({}), 'readiness-gate-label'), []);
    const instance = lint({ namespaceLabels: '', ingressAnnotations: 'alb.ingress.kubernetes.io/healthcheck-path: /healthz\nalb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20' });
    assert.deepEqual(only(instance, 'readiness-gate-label'), []);
  });

  it('readiness-gate-label: a namespace outside the manifests points at the Deployment', () => {
    const files = app({ namespaceLabels: '' });
    delete files['ns.yaml'];
    const f = one(lintManifests(setOf(files), REQUIRE).findings, 'readiness-gate-label');
    assert.deepEqual([f.file, f.line, f.object.kind, f.object.name], ['deploy.yaml', 5, 'Namespace', 'shop']);
    assert.match(f.fix, /kubectl label namespace shop/);
  });

  it('target-type-ip: the default instance type is an error; a warning when gates are off and the namespace unlabelled', () => {
    const noType = 'alb.ingress.kubernetes.io/healthcheck-path: /healthz\nalb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20';
    const f = one(lint({ ingressAnnotations: noType }), 'target-type-ip');
    assert.deepEqual([f.severity, f.file, f.line], ['error', 'ing.yaml', 6]);
    assert.match(f.message, /instance/);
    assert.equal(one(lint({ ingressAnnotations: noType, namespaceLabels: '' }, { readinessGates: 'off' }), 'target-type-ip').severity, 'warning');
    assert.deepEqual(only(lint({}), 'target-type-ip'), []);
    const viaService = one(lint({ serviceAnnotations: 'alb.ingress.kubernetes.io/target-type: instance' }), 'target-type-ip');
    assert.deepEqual([viaService.file, viaService.line, viaService.object.kind], ['svc.yaml', 7, 'Service']);
  });

  it('readiness-probe: a serving container without one', () => {
    const f = one(lint({ readinessProbe: '' }), 'readiness-probe');
    assert.deepEqual([f.severity, f.file, f.line], ['error', 'deploy.yaml', 24]);
    assert.deepEqual(only(lint({}), 'readiness-probe'), []);
  });

  it('prestop-missing: no hook is an error; a hook whose length cannot be read is not', () => {
    const f = one(lint({ preStop: '' }), 'prestop-missing');
    assert.deepEqual([f.severity, f.file, f.line, f.object], ['error', 'deploy.yaml', 24, { kind: 'Deployment', namespace: 'shop', name: 'web' }]);
    assert.match(f.message, /502/);
    assert.deepEqual(only(lint({ preStop: 'lifecycle:\n  preStop:\n    exec:\n      command: ["/drain.sh"]' }), 'prestop-missing'), []);
  });

  it('prestop-missing: only the container that serves the Service port is checked', () => {
    const sidecar = '- name: logs\n  image: example/logs:1';
    assert.deepEqual(only(lint({ containerExtra: sidecar }), 'prestop-missing'), []);
  });

  it('grace-period-too-short: grace < preStop + shutdown', () => {
    const f = one(lint({ podSpecExtra: 'terminationGracePeriodSeconds: 32' }), 'grace-period-too-short');
    assert.deepEqual([f.severity, f.file, f.line], ['error', 'deploy.yaml', 22]);
    assert.match(f.fix, /terminationGracePeriodSeconds: 40/);
    const defaulted = one(lint({ podSpecExtra: 'dnsPolicy: ClusterFirst', preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 40' }), 'grace-period-too-short');
    assert.match(defaulted.message, /30 s \(the default\)/);
    assert.deepEqual(only(lint({ podSpecExtra: 'terminationGracePeriodSeconds: 35' }), 'grace-period-too-short'), []);
    assert.deepEqual(only(lint({ podSpecExtra: 'terminationGracePeriodSeconds: 40' }, { shutdownSeconds: 10 }), 'grace-period-too-short'), []);
    assert.equal(only(lint({ podSpecExtra: 'terminationGracePeriodSeconds: 39' }, { shutdownSeconds: 10 }), 'grace-period-too-short').length, 1);
  });

  it('deregistration-delay: delay ≥ preStop, unset, malformed; points at the annotation that supplies it', () => {
    const withDelay = (attrs: string): string => `alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-path: /healthz\nalb.ingress.kubernetes.io/target-group-attributes: ${attrs}`;
    const equal = one(lint({ ingressAnnotations: withDelay('deregistration_delay.timeout_seconds=30') }), 'deregistration-delay');
    assert.deepEqual([equal.severity, equal.file, equal.line, equal.object.kind], ['error', 'ing.yaml', 9, 'Ingress']);
    assert.match(equal.fix, /deregistration_delay\.timeout_seconds=22/);
    const unset = one(lint({ ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-path: /healthz' }), 'deregistration-delay');
    assert.deepEqual([unset.severity, unset.line], ['error', 6]);
    assert.match(unset.message, /AWS's default of 300 s/);
    const longSleep = lint({
      ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-path: /healthz',
      preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 400',
      podSpecExtra: 'terminationGracePeriodSeconds: 420',
      deploymentExtra: 'progressDeadlineSeconds: 3600',
    });
    assert.equal(one(longSleep, 'deregistration-delay').severity, 'warning');
    const malformed = one(lint({ ingressAnnotations: withDelay('deregistration_delay.timeout_seconds') }), 'deregistration-delay');
    assert.match(malformed.message, /not key=value/);
    assert.match(one(lint({ ingressAnnotations: withDelay('deregistration_delay.timeout_seconds=9000') }), 'deregistration-delay').message, /0–3600/);
    const onService = one(lint({ serviceAnnotations: 'alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=45' }), 'deregistration-delay');
    assert.deepEqual([onService.file, onService.line, onService.object.kind], ['svc.yaml', 7, 'Service']);
    assert.deepEqual(only(lint({}), 'deregistration-delay'), []);
    assert.deepEqual(only(lint({ preStop: 'lifecycle:\n  preStop:\n    exec:\n      command: ["/drain.sh"]' }), 'deregistration-delay'), []);
  });

  it('recreate-strategy', () => {
    const f = one(lint({ strategy: 'strategy:\n  type: Recreate' }), 'recreate-strategy');
    assert.deepEqual([f.severity, f.file, f.line], ['error', 'deploy.yaml', 12]);
    assert.match(f.message, /503/);
    assert.deepEqual(only(lint({}), 'recreate-strategy'), []);
  });

  it('max-unavailable: resolves to every replica, or 100%', () => {
    const one1 = one(lint({ replicas: 1, strategy: 'strategy:\n  rollingUpdate:\n    maxSurge: 0\n    maxUnavailable: 1' }), 'max-unavailable');
    assert.deepEqual([one1.severity, one1.file, one1.line], ['error', 'deploy.yaml', 14]);
    assert.equal(only(lint({ strategy: 'strategy:\n  rollingUpdate:\n    maxUnavailable: 100%' }), 'max-unavailable').length, 1);
    assert.equal(only(lint({ replicas: 3, strategy: 'strategy:\n  rollingUpdate:\n    maxUnavailable: 3' }), 'max-unavailable').length, 1);
    assert.deepEqual(only(lint({ replicas: 1, strategy: 'strategy:\n  type: RollingUpdate' }), 'max-unavailable'), [], '25% of 1 rounds down to 0');
    assert.deepEqual(only(lint({ strategy: 'strategy:\n  rollingUpdate:\n    maxUnavailable: 50%' }), 'max-unavailable'), []);
  });

  it('selector-mismatch: a routed Service that selects no pod template, with the closest one named', () => {
    const f = one(lint({ serviceSelector: 'app: webb' }), 'selector-mismatch');
    assert.deepEqual([f.severity, f.file, f.line, f.object.kind], ['error', 'svc.yaml', 7, 'Service']);
    assert.match(f.message, /closest is Deployment web with app=web/);
    const files = app({});
    delete files['deploy.yaml'];
    assert.equal(one(lintManifests(setOf(files), REQUIRE).findings, 'selector-mismatch').severity, 'warning', 'no workload in the manifests at all');
    assert.deepEqual(only(lint({ serviceSelector: 'tier: front' }), 'selector-mismatch'), []);
  });

  it('backend-missing: unknown Service is a warning, unknown port an error', () => {
    const svc = one(lint({ backendService: 'nope' }), 'backend-missing');
    assert.deepEqual([svc.severity, svc.file, svc.line], ['warning', 'ing.yaml', 19]);
    assert.match(svc.message, /may already exist in the cluster/);
    const port = one(lint({ backendPort: 'number: 81' }), 'backend-missing');
    assert.deepEqual([port.severity, port.file, port.line], ['error', 'ing.yaml', 20]);
    assert.match(port.message, /80 \(http\)/);
    assert.equal(one(lint({ backendPort: 'name: https' }), 'backend-missing').severity, 'error');
    assert.deepEqual(only(lint({ backendPort: 'name: http' }), 'backend-missing'), []);
  });

  it('healthcheck-path: ALB checks a different path than the readinessProbe', () => {
    const f = one(lint({ ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20' }), 'healthcheck-path');
    assert.deepEqual([f.severity, f.file, f.line], ['warning', 'ing.yaml', 6]);
    assert.match(f.message, /\/ \(the controller's default\).*\/healthz/);
    const svc = one(lint({ serviceAnnotations: 'alb.ingress.kubernetes.io/healthcheck-path: /ping' }), 'healthcheck-path');
    assert.deepEqual([svc.file, svc.line], ['svc.yaml', 7]);
    assert.deepEqual(only(lint({}), 'healthcheck-path'), []);
  });

  it('progress-deadline: shorter than the estimated rollout', () => {
    const f = one(lint({ deploymentExtra: 'progressDeadlineSeconds: 60' }), 'progress-deadline');
    assert.deepEqual([f.severity, f.file, f.line], ['warning', 'deploy.yaml', 8]);
    assert.match(f.message, /4 replicas in 4 batches/);
    assert.deepEqual(only(lint({ deploymentExtra: 'progressDeadlineSeconds: 900' }), 'progress-deadline'), []);
  });
});

describe('lint severity overrides', () => {
  const broken: AppKnobs = { preStop: '', namespaceLabels: '' };

  it('options.severity changes or turns off a rule', () => {
    const findings = lint(broken, { severity: { 'prestop-missing': 'warning', 'readiness-gate-label': 'off' } });
    assert.equal(one(findings, 'prestop-missing').severity, 'warning');
    assert.deepEqual(only(findings, 'readiness-gate-label'), []);
  });

  it('alb-rollout.dev/lint-disable and lint-severity on the object win over options', () => {
    const disabled = lint({ ...broken, deploymentAnnotations: 'alb-rollout.dev/lint-disable: "readiness-probe, prestop-missing"' });
    assert.deepEqual(only(disabled, 'prestop-missing'), []);
    assert.deepEqual(only(lint({ ...broken, deploymentAnnotations: 'alb-rollout.dev/lint-disable: all' }), 'prestop-missing'), []);
    const info = lint({ ...broken, deploymentAnnotations: 'alb-rollout.dev/lint-severity: "prestop-missing=info,bogus=error"' }, { severity: { 'prestop-missing': 'warning' } });
    assert.equal(one(info, 'prestop-missing').severity, 'info');
  });

  it('namespace-level findings also honour the Deployment’s annotations', () => {
    const findings = lint({ ...broken, deploymentAnnotations: 'alb-rollout.dev/lint-severity: readiness-gate-label=warning' });
    assert.equal(one(findings, 'readiness-gate-label').severity, 'warning');
    const onNamespace = app({ ...broken });
    onNamespace['ns.yaml'] = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations:\n    alb-rollout.dev/lint-disable: readiness-gate-label\n';
    assert.deepEqual(only(lintManifests(setOf(onNamespace), REQUIRE).findings, 'readiness-gate-label'), []);
  });
});

describe('HorizontalPodAutoscaler', () => {
  const hpa = (min: number): string => `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: web }
  minReplicas: ${min}
  maxReplicas: 10
`;
  const withoutReplicas = (files: Record<string, string>): Record<string, string> => ({ ...files, 'deploy.yaml': (files['deploy.yaml'] as string).replace(/^  replicas: \d+\n/m, '') });

  it('uses minReplicas for a Deployment without spec.replicas (no max-unavailable error at 1 replica)', () => {
    const files = withoutReplicas(app({ strategy: 'strategy:\n  type: RollingUpdate\n  rollingUpdate:\n    maxSurge: 1\n    maxUnavailable: 1' }));
    const alone = lintManifests(setOf(files), REQUIRE);
    assert.ok(alone.findings.some((f) => f.rule === 'max-unavailable'), 'one replica, maxUnavailable 1: every pod may go');
    const scaled = setOf({ ...files, 'hpa.yaml': hpa(3) });
    assert.equal(buildModel(scaled).deployments[0]?.replicas, 3);
    assert.ok(!lintManifests(scaled, REQUIRE).findings.some((f) => f.rule === 'max-unavailable'));
    assert.ok(!lintManifests(scaled, REQUIRE).findings.some((f) => f.rule === 'replicas-with-hpa'));
  });

  it('warns when spec.replicas is set and an HPA scales the Deployment', () => {
    const r = lintManifests(setOf({ ...app(), 'hpa.yaml': hpa(2) }), REQUIRE);
    const f = r.findings.find((x) => x.rule === 'replicas-with-hpa');
    assert.ok(f, 'a replicas-with-hpa finding');
    assert.equal(f.severity, 'warning');
    assert.equal(f.file, 'deploy.yaml');
    assert.match(f.message, /HorizontalPodAutoscaler web scales it \(min 2, max 10\)/);
  });
});

describe('lint: keep-alive-timeout (the app closing pooled connections before the ALB does)', () => {
  it('no finding when the app declares nothing (its keep-alive lives in its code, which lint cannot read)', () => {
    assert.deepEqual(only(lint({}), 'keep-alive-timeout'), []);
  });

  it('an error when the declared timeout is not above the ALB idle timeout (60 s, or the Ingress attribute)', () => {
    const f = one(lint({ deploymentAnnotations: 'alb-rollout.dev/keep-alive-timeout: "5s"' }), 'keep-alive-timeout');
    assert.equal(f.severity, 'error');
    assert.equal(f.file, 'deploy.yaml');
    assert.match(f.message, /keep-alive timeout of 5 s .* not above the idle timeout of the ALB of Ingress shop\/\S+ \(60 s\).* 502/);
    assert.match(f.fix, /above 60 s .*server\.keepAliveTimeout = 75000/);
    assert.deepEqual(only(lint({ deploymentAnnotations: 'alb-rollout.dev/keep-alive-timeout: "75s"' }), 'keep-alive-timeout'), []);
    const raised = lint({
      deploymentAnnotations: 'alb-rollout.dev/keep-alive-timeout: "75s"',
      ingressAnnotations: 'alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=120',
    });
    assert.match(one(raised, 'keep-alive-timeout').message, /\(120 s\)/);
  });

  it('a value that is not a duration is an error naming the fix', () => {
    const f = one(lint({ deploymentAnnotations: 'alb-rollout.dev/keep-alive-timeout: "soon"' }), 'keep-alive-timeout');
    assert.match(f.message, /not a duration/);
    assert.match(f.fix, /"75s"/);
  });
});
