import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { lintManifests } from '../../src/lint/index.js';
import { buildModel } from '../../src/manifests/model.js';
import type { ManifestSet } from '../../src/manifests/types.js';
import { DEFAULT_MIN_PRESTOP_SECONDS, renderManifestsYaml, tuneManifests, type TuneOptions } from '../../src/tune/index.js';
import { DEREGISTER_CALL_P99_SECONDS, DEREGISTRATION_PATH_P99_SECONDS, PROPAGATION_P99_SECONDS, REQUEST_ALLOWANCE_SECONDS, delayBelow } from '../../src/tune/timers.js';
import { app, loadExample, setOf, type AppKnobs } from '../fixtures/manifests.js';

const AUTO: TuneOptions = { mode: 'auto', shutdownSeconds: 5, addPreStop: true };
const ATTRS = 'alb.ingress.kubernetes.io/target-group-attributes';
/** The fixture app's container with the tuner's minimum sleep (DEFAULT_MIN_PRESTOP_SECONDS), so only the delay and grace are at stake. */
const SLEEP_MIN = `lifecycle:\n  preStop:\n    sleep:\n      seconds: ${DEFAULT_MIN_PRESTOP_SECONDS}`;

function snapshot(set: ManifestSet): string {
  return JSON.stringify(set.objects.map((o) => o.object));
}

function ingressWith(attrs: string): string {
  return `alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-path: /healthz\n${ATTRS}: ${attrs}`;
}

function tune(knobs: AppKnobs, options: Partial<TuneOptions> = {}) {
  const set = setOf(app({ preStop: SLEEP_MIN, ...knobs }));
  const before = snapshot(set);
  const result = tuneManifests(set, { ...AUTO, ...options });
  assert.equal(snapshot(set), before, 'the input set is never modified');
  return { set, result };
}

describe('the default timers against the measured tail (docs/lab-timings.md)', () => {
  it('the default preStop and the delay below it cover the p99 deregistration path and a request, with margin', () => {
    const preStop = DEFAULT_MIN_PRESTOP_SECONDS;
    const delay = delayBelow(preStop);
    // SIGTERM comes after every node stopped routing (p99 path) and the last request routed finished, with 5 s to spare.
    assert.ok(preStop >= DEREGISTRATION_PATH_P99_SECONDS + REQUEST_ALLOWANCE_SECONDS + 5, `preStop ${preStop}`);
    // The delay (from DeregisterTargets) outlasts the slowest node's p99 propagation plus that request…
    assert.ok(delay >= PROPAGATION_P99_SECONDS + REQUEST_ALLOWANCE_SECONDS, `delay ${delay}`);
    // …and ends before SIGTERM even when DeregisterTargets came at its p99.
    assert.ok(DEREGISTER_CALL_P99_SECONDS + delay < preStop, `delay ${delay} + call ${DEREGISTER_CALL_P99_SECONDS} vs preStop ${preStop}`);
    assert.deepEqual([preStop, delay], [40, 30]);
    // The former default failed the second bound: its 22 s delay ended before the p99 propagation and a request.
    assert.ok(delayBelow(30) < PROPAGATION_P99_SECONDS + REQUEST_ALLOWANCE_SECONDS);
  });
});

describe('tuneManifests', () => {
  it('auto: makes the naive example safe (preStop, delay) and lint agrees', async () => {
    const naive = await loadExample('naive');
    const before = snapshot(naive);
    const { set, changes, timers } = tuneManifests(naive, AUTO);
    assert.equal(snapshot(naive), before);
    assert.deepEqual(
      changes.map((c) => [c.object.kind, c.field, c.from, c.to, `${c.file}:${c.line}`]),
      [
        ['Deployment', 'spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds', null, 40, 'examples/2048/naive/2-deployment.yaml:22'],
        ['Ingress', `metadata.annotations["${ATTRS}"]`, null, 'deregistration_delay.timeout_seconds=30', 'examples/2048/naive/4-ingress.yaml:6'],
        ['Deployment', 'spec.template.spec.terminationGracePeriodSeconds', null, 50, 'examples/2048/naive/2-deployment.yaml:20'],
      ],
    );
    assert.match(changes[1]?.reason ?? '', /deregistration delay 300 s \(AWS default\) ≥ preStop 40 s.*draining after their pod exits/);
    assert.deepEqual(timers, [
      {
        deployment: { namespace: 'game-2048', name: 'deployment-2048' },
        targetGroups: ['game-2048/ingress-2048 → service-2048:80'],
        preStopSeconds: 40,
        gracePeriodSeconds: 50,
        deregistrationDelaySeconds: 30,
        holds: true,
        problems: [],
      },
    ]);
    const errors = lintManifests(set, { readinessGates: 'inject', shutdownSeconds: 5 }).findings.filter((f) => f.severity !== 'info');
    assert.deepEqual(errors, []);
    const rewritten = set.objects.find((o) => o.ref.kind === 'Ingress');
    const original = naive.objects.find((o) => o.ref.kind === 'Ingress');
    assert.notEqual(rewritten, original);
    assert.equal(rewritten?.source, original?.source, 'rewritten objects keep their source and locate()');
    assert.equal(set.objects.find((o) => o.ref.kind === 'Service'), naive.objects.find((o) => o.ref.kind === 'Service'), 'untouched objects are shared');
  });

  it('check: the same changes, the set left alone, timers of the manifests as they are', async () => {
    const naive = await loadExample('naive');
    const auto = tuneManifests(naive, AUTO);
    const check = tuneManifests(naive, { ...AUTO, mode: 'check' });
    assert.equal(check.set, naive);
    assert.deepEqual(check.changes, auto.changes);
    assert.equal(check.timers[0]?.holds, false);
    assert.equal(check.timers[0]?.preStopSeconds, null);
    assert.match(check.timers[0]?.problems.join('\n') ?? '', /no preStop/);
  });

  it('off: nothing', async () => {
    const naive = await loadExample('naive');
    assert.deepEqual(tuneManifests(naive, { ...AUTO, mode: 'off' }), { set: naive, changes: [], timers: [] });
  });

  it('leaves the safe example unchanged', async () => {
    const safe = await loadExample('safe');
    const r = tuneManifests(safe, AUTO);
    assert.deepEqual(r.changes, []);
    assert.equal(r.set, safe);
    assert.equal(r.timers[0]?.holds, true);
  });

  it('merges the delay into existing attributes, keeping the other keys and their order', () => {
    const { result } = tune({ ingressAnnotations: ingressWith('stickiness.enabled=true,deregistration_delay.timeout_seconds=300,load_balancing.algorithm.type=least_outstanding_requests') });
    assert.equal(result.changes.length, 1);
    assert.equal(result.changes[0]?.from, 'stickiness.enabled=true,deregistration_delay.timeout_seconds=300,load_balancing.algorithm.type=least_outstanding_requests');
    assert.equal(result.changes[0]?.to, 'stickiness.enabled=true,deregistration_delay.timeout_seconds=30,load_balancing.algorithm.type=least_outstanding_requests');
    const ing = result.set.objects.find((o) => o.ref.kind === 'Ingress');
    assert.equal(ing?.object.metadata.annotations?.[ATTRS], result.changes[0]?.to);
  });

  it('writes on the Service when the Service supplies the effective attributes', () => {
    const { result } = tune({ serviceAnnotations: `${ATTRS}: slow_start.duration_seconds=30` });
    assert.deepEqual(
      result.changes.map((c) => [c.object.kind, c.from, c.to, c.file]),
      [['Service', 'slow_start.duration_seconds=30', 'slow_start.duration_seconds=30,deregistration_delay.timeout_seconds=30', 'svc.yaml']],
    );
    assert.equal(buildModel(result.set).targetGroups[0]?.deregistrationDelaySeconds, 30);
  });

  it('fixes an out-of-range delay and lowers one that is not below the preStop', () => {
    assert.equal(tune({ ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=9000') }).result.changes[0]?.to, 'deregistration_delay.timeout_seconds=30');
    assert.equal(tune({ ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=40') }).result.changes[0]?.to, 'deregistration_delay.timeout_seconds=30');
    assert.deepEqual(tune({ ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=39') }).result.changes, []);
  });

  it('raises the grace period and never shortens a longer preStop', () => {
    const { result } = tune({ preStop: 'lifecycle:\n  preStop:\n    exec:\n      command: ["/bin/sh", "-c", "sleep 90"]', podSpecExtra: 'terminationGracePeriodSeconds: 60' });
    assert.deepEqual(result.changes.map((c) => [c.field, c.from, c.to]), [['spec.template.spec.terminationGracePeriodSeconds', 60, 100]]);
    assert.match(result.changes[0]?.reason ?? '', /SIGKILL/);
    const container = buildModel(result.set).deployments[0]?.containers[0];
    assert.deepEqual(container?.preStop, { kind: 'sleep', form: 'exec', seconds: 90 }, 'exec form kept, not shortened');
    assert.equal(buildModel(result.set).deployments[0]?.terminationGracePeriodSeconds, 100);
  });

  it('raises a defaulted grace period (from: null)', () => {
    const { result } = tune({ podSpecExtra: 'dnsPolicy: ClusterFirst', preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 40' });
    assert.deepEqual(result.changes.map((c) => [c.from, c.to]), [[null, 50]]);
  });

  it('picks one delay that fits every Deployment behind a shared target group', () => {
    const files = app({ ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=60'), preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 90', podSpecExtra: 'terminationGracePeriodSeconds: 120' });
    files['canary.yaml'] = (files['deploy.yaml'] ?? '').replace('name: web\n', 'name: web-canary\n').replace('seconds: 90', 'seconds: 20');
    const set = setOf(files);
    const result = tuneManifests(set, AUTO);
    // The canary's 20 s sleep is below the minimum (40 s) and is lengthened first; the one delay fits both.
    assert.deepEqual(result.changes.map((c) => c.to), [40, 'deregistration_delay.timeout_seconds=30']);
    assert.match(result.changes[1]?.reason ?? '', /web-canary/);
    assert.deepEqual(result.timers.map((t) => [t.deployment.name, t.preStopSeconds, t.deregistrationDelaySeconds, t.holds]), [
      ['web', 90, 30, true],
      ['web-canary', 40, 30, true],
    ]);
  });

  it('lengthens a readable preStop sleep below the minimum (sleep action or exec `sleep N`), keeping the rest of the command; never shortens', () => {
    const action = tune({ preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 5', podSpecExtra: 'terminationGracePeriodSeconds: 60', ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=3') }).result;
    assert.deepEqual(action.changes.map((c) => [c.field, c.from, c.to]), [['spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds', 5, 40]]);
    assert.match(action.changes[0]?.reason ?? '', /sleeps only 5 s in preStop.*every load-balancer node/);
    const exec = tune({
      preStop: 'lifecycle:\n  preStop:\n    exec:\n      command: ["/bin/sh", "-c", "sleep 10 && nginx -s quit"]',
      podSpecExtra: 'terminationGracePeriodSeconds: 60',
      ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=3'),
    });
    assert.deepEqual(exec.result.changes.map((c) => [c.field, c.from, c.to]), [['spec.template.spec.containers[0].lifecycle.preStop.exec.command', 10, 40]]);
    const container = ((((exec.result.set.objects.find((o) => o.ref.kind === 'Deployment')?.object.spec as Record<string, unknown>).template as Record<string, unknown>).spec as Record<string, unknown>).containers as Array<Record<string, unknown>>)[0];
    assert.deepEqual(((container?.lifecycle as Record<string, Record<string, Record<string, unknown>>>).preStop?.exec?.command), ['/bin/sh', '-c', 'sleep 40 && nginx -s quit']);
    const long = tune({ preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 90', podSpecExtra: 'terminationGracePeriodSeconds: 120', ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=30') }).result;
    assert.deepEqual(long.changes, [], 'a longer sleep is left alone');
    const off = tune({ preStop: 'lifecycle:\n  preStop:\n    sleep:\n      seconds: 5', podSpecExtra: 'terminationGracePeriodSeconds: 60', ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=3') }, { addPreStop: false }).result;
    assert.deepEqual(off.changes, [], 'without addPreStop the sleep is not changed');
  });

  it('without addPreStop: adds no hook, leaves the delay, and the timers say why', () => {
    const { result } = tune({ preStop: '' }, { addPreStop: false });
    assert.deepEqual(result.changes, []);
    assert.equal(result.timers[0]?.holds, false);
    assert.match(result.timers[0]?.problems[0] ?? '', /container app has no preStop sleep/);
  });

  it('adds the preStop sleep the options ask for and fits the delay and grace period around it', () => {
    const { result } = tune({ preStop: '', podSpecExtra: 'terminationGracePeriodSeconds: 20', ingressAnnotations: ingressWith('deregistration_delay.timeout_seconds=30') }, { minPreStopSeconds: 25 });
    assert.deepEqual(
      result.changes.map((c) => [c.field, c.to]),
      [
        ['spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds', 25],
        [`metadata.annotations["${ATTRS}"]`, 'deregistration_delay.timeout_seconds=18'],
        ['spec.template.spec.terminationGracePeriodSeconds', 35],
      ],
    );
    assert.deepEqual(buildModel(result.set).deployments[0]?.containers[0]?.preStop, { kind: 'sleep', form: 'sleep-action', seconds: 25 });
    assert.equal(result.timers[0]?.holds, true);
  });
});

describe('renderManifestsYaml', () => {
  it('writes the (tuned) objects back, one multi-document text per source file', async () => {
    const tuned = tuneManifests(await loadExample('naive'), AUTO).set;
    const files = renderManifestsYaml(tuned);
    assert.deepEqual([...files.keys()], tuned.files);
    const ingress = files.get('examples/2048/naive/4-ingress.yaml') ?? '';
    assert.match(ingress, /target-group-attributes: deregistration_delay\.timeout_seconds=30/);
    const reparsed = [...files.values()].flatMap((text) => parseAllDocuments(text) as unknown as Array<{ toJS(): unknown }>).map((d) => d.toJS());
    assert.deepEqual(reparsed, tuned.objects.map((o) => o.object));
  });

  it('joins several objects of one file with ---', () => {
    const set = setOf({ 'all.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n' });
    const text = renderManifestsYaml(set).get('all.yaml') ?? '';
    assert.equal(text.split('---\n').length, 2);
    assert.match(text, /name: a\n  namespace: default\n---\n/);
  });
});
