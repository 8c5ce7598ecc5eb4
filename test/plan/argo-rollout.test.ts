import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { activeHeaderRoute, argoManagedServices, argoRolloutState, argoServices, canaryStepString, checkArgoRollout, selectorIsArgos, withoutSelector, type ArgoSnapshot, type ArgoWatchView } from '../../src/plan/checks/argo-rollout.js';
import type { TargetView } from '../../src/plan/checks/result.js';

/** Rollout status snapshots shaped as Argo Rollouts v1.10 writes them (observedGeneration is a string). */

const STEPS: JsonObject[] = [{ setWeight: 20 }, { pause: {} }, { setWeight: 60 }, { pause: { duration: '30s' } }, { setWeight: 100 }];

function rollout(status: JsonObject, opts: { generation?: number; steps?: JsonObject[]; blueGreen?: JsonObject; paused?: boolean } = {}): KubeObject {
  const strategy = opts.blueGreen
    ? { blueGreen: opts.blueGreen }
    : { canary: { canaryService: 'web-canary', stableService: 'web-stable', trafficRouting: { alb: { ingress: 'web', rootService: 'web-root', servicePort: 80 } }, steps: opts.steps ?? STEPS } };
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Rollout',
    metadata: { name: 'web', namespace: 'shop', generation: opts.generation ?? 2 },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, strategy, ...(opts.paused ? { paused: true } : {}) },
    status: { observedGeneration: '2', replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, ...status },
  };
}

function pod(name: string, hash: string, ip: string, opts: { gates?: string[]; created?: string; crash?: boolean; uid?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: opts.uid ?? name, labels: { app: 'web', 'rollouts-pod-template-hash': hash }, creationTimestamp: opts.created ?? '2026-12-02T03:00:10Z' },
    spec: { readinessGates: (opts.gates ?? []).map((conditionType) => ({ conditionType })) },
    status: {
      podIP: ip,
      phase: 'Running',
      conditions: (opts.gates ?? []).map((type) => ({ type, status: 'True' })),
      containerStatuses: [
        opts.crash
          ? { name: 'web', ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1 } } }
          : { name: 'web', ready: true, restartCount: 0, state: { running: {} } },
      ],
    },
  };
}

function tgb(name: string, service: string, created = '2026-12-02T03:00:00Z'): KubeObject {
  return { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'TargetGroupBinding', metadata: { name, namespace: 'shop', creationTimestamp: created }, spec: { serviceRef: { name: service, port: 80 }, targetGroupARN: `arn:tg/${name}`, targetType: 'ip' } };
}

function slice(service: string, ips: string[]): KubeObject {
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${service}-x`, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } }, endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })) } as KubeObject;
}

const healthy = (...ips: string[]): TargetView[] => ips.map((id) => ({ id, port: 8080, state: 'healthy' }));

const view = (o: Partial<ArgoWatchView> = {}): ArgoWatchView => ({ namespace: 'shop', name: 'web', selector: 'app=web', oldPodUids: new Set(), services: ['web-canary', 'web-stable'], pauses: 'end', gates: true, ...o });

const GATE_C = 'target-health.elbv2.k8s.aws/k8s-canary';
const GATE_S = 'target-health.elbv2.k8s.aws/k8s-stable';

function snap(ro: KubeObject, o: Partial<ArgoSnapshot> = {}): ArgoSnapshot {
  return {
    rollout: ro,
    pods: [pod('web-b-1', 'b', '10.0.0.3', { gates: [GATE_C, GATE_S] }), pod('web-b-2', 'b', '10.0.0.4', { gates: [GATE_C, GATE_S] })],
    slices: [slice('web-canary', ['10.0.0.3', '10.0.0.4']), slice('web-stable', ['10.0.0.3', '10.0.0.4'])],
    bindings: [tgb('k8s-canary', 'web-canary'), tgb('k8s-stable', 'web-stable')],
    health: new Map([
      ['arn:tg/k8s-canary', healthy('10.0.0.3', '10.0.0.4')],
      ['arn:tg/k8s-stable', healthy('10.0.0.3', '10.0.0.4')],
    ]),
    ...o,
  };
}

describe('Argo Rollout status, read as the kubectl plugin reads it', () => {
  it('believes a phase only once the string observedGeneration equals metadata.generation', () => {
    const st = argoRolloutState(rollout({ observedGeneration: '1', phase: 'Healthy' }, { generation: 2 }));
    assert.equal(st.observed, false);
    assert.equal(st.phase, 'Progressing');
    assert.match(st.message, /spec update to be observed/);
    assert.equal(argoRolloutState(rollout({ phase: 'Healthy' })).phase, 'Healthy');
    // A controller pause nobody lists any more: unpausing, not paused.
    assert.match(argoRolloutState(rollout({ phase: 'Paused', controllerPause: true, pauseConditions: [] })).message, /unpause/);
  });

  it('tells a pause only a person ends from one that ends by itself', () => {
    const indefinite = argoRolloutState(rollout({ phase: 'Paused', currentStepIndex: 1, controllerPause: true, pauseConditions: [{ reason: 'CanaryPauseStep', startTime: 'x' }] }));
    assert.deepEqual(indefinite.pause, { reason: 'CanaryPauseStep', endsByItself: false });
    const timed = argoRolloutState(rollout({ phase: 'Paused', currentStepIndex: 3, controllerPause: true, pauseConditions: [{ reason: 'CanaryPauseStep', startTime: 'x' }] }));
    assert.equal(timed.pause?.endsByItself, true);
    const bg = argoRolloutState(rollout({ phase: 'Paused', controllerPause: true, pauseConditions: [{ reason: 'BlueGreenPause' }] }, { blueGreen: { activeService: 'a', previewService: 'p', autoPromotionSeconds: 30 } }));
    assert.equal(bg.pause?.endsByItself, true);
    assert.equal(argoRolloutState(rollout({ phase: 'Paused', message: 'manually paused' }, { paused: true })).pause?.endsByItself, false);
  });

  it('names steps and Services as Argo does', () => {
    assert.deepEqual(STEPS.map(canaryStepString), ['setWeight: 20', 'pause', 'setWeight: 60', 'pause: 30s', 'setWeight: 100']);
    assert.deepEqual(argoServices(rollout({})), { strategy: 'Canary', newService: 'web-canary', stableService: 'web-stable', alb: { ingresses: ['web'], servicePort: 80, rootService: 'web-root' } });
    assert.deepEqual(argoServices(rollout({}, { blueGreen: { activeService: 'a', previewService: 'p' } })), { strategy: 'BlueGreen', newService: 'p', stableService: 'a' });
  });
});

describe('checkArgoRollout', () => {
  it('Healthy with every new pod healthy in both target groups and targets = endpoints: done', () => {
    const v = checkArgoRollout(view(), snap(rollout({ phase: 'Healthy', currentPodHash: 'b', stableRS: 'b', currentStepIndex: 5 })));
    assert.equal(v.outcome, 'healthy', v.result.message);
    assert.equal(v.result.done, true);
    assert.match(v.result.message, /Healthy: 2 pod\(s\) of b serving, every new target healthy in k8s-canary, k8s-stable/);
  });

  it('Healthy but an old target still draining, or a binding missing: not done yet, and says which', () => {
    const draining = snap(rollout({ phase: 'Healthy', currentPodHash: 'b', stableRS: 'b' }));
    draining.health.set('arn:tg/k8s-stable', [...healthy('10.0.0.3', '10.0.0.4'), { id: '10.0.0.1', port: 8080, state: 'draining' }]);
    const d = checkArgoRollout(view(), draining);
    assert.equal(d.result.done, false);
    assert.match(d.result.message, /draining/);
    const noTgb = checkArgoRollout(view(), snap(rollout({ phase: 'Healthy', currentPodHash: 'b', stableRS: 'b' }), { bindings: [tgb('k8s-stable', 'web-stable')] }));
    assert.equal(noTgb.result.done, false);
    assert.match(noTgb.result.message, /no TargetGroupBinding with a target group ARN yet for Service\(s\) web-canary/);
  });

  it('Progressing: pending with the step, the weights and the pods', () => {
    const v = checkArgoRollout(view(), snap(rollout({ phase: 'Progressing', message: 'more replicas need to be updated', currentPodHash: 'b', stableRS: 'a', currentStepIndex: 0, updatedReplicas: 1, availableReplicas: 2, canary: { weights: { canary: { weight: 20 }, stable: { weight: 80 } } } })));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /Progressing: more replicas need to be updated; step 1\/5 \(setWeight: 20\), weight canary 20% \/ stable 80%, 2 pod\(s\) available \(2 desired, 1 of the new version\)/);
  });

  it('Paused at `pause: {}` with the canary healthy: ends, naming the step and how to promote', () => {
    const ro = rollout({ phase: 'Paused', message: 'CanaryPauseStep', currentPodHash: 'b', stableRS: 'a', currentStepIndex: 1, controllerPause: true, pauseConditions: [{ reason: 'CanaryPauseStep' }] });
    const v = checkArgoRollout(view(), snap(ro, { health: new Map([['arn:tg/k8s-canary', healthy('10.0.0.3', '10.0.0.4')]]) }));
    assert.equal(v.outcome, 'paused', v.result.message);
    assert.equal(v.result.done, true);
    assert.match(v.result.message, /is Paused at step 2\/5 \(pause\) \(CanaryPauseStep\)/);
    assert.match(v.result.message, /kubectl argo rollouts promote web -n shop/);
    assert.match(v.result.message, /--argo-pauses wait/);
    // --argo-pauses wait: the same snapshot is still pending.
    const waiting = checkArgoRollout(view({ pauses: 'wait' }), snap(ro));
    assert.equal(waiting.outcome, 'pending');
    assert.match(waiting.result.message, /waiting for someone to promote: kubectl argo rollouts promote web -n shop/);
  });

  it('Paused with the canary not yet healthy: does not end there yet', () => {
    const ro = rollout({ phase: 'Paused', currentPodHash: 'b', stableRS: 'a', currentStepIndex: 1, pauseConditions: [{ reason: 'CanaryPauseStep' }] });
    const v = checkArgoRollout(view(), snap(ro, { health: new Map([['arn:tg/k8s-canary', [{ id: '10.0.0.3', port: 8080, state: 'initial', reason: 'Elb.RegistrationInProgress' }]]]) }));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /Paused at step 2\/5 \(pause\); before deploy ends there: .*initial/);
  });

  it('a timed pause is waited through', () => {
    const ro = rollout({ phase: 'Paused', currentPodHash: 'b', stableRS: 'a', currentStepIndex: 3, pauseConditions: [{ reason: 'CanaryPauseStep' }] });
    const v = checkArgoRollout(view(), snap(ro));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /step 4\/5 \(pause: 30s\).*resumes by itself/);
  });

  it('Degraded after an abort: fails with Argo\'s message, the AnalysisRun and what to do', () => {
    const ro = rollout({
      phase: 'Degraded',
      message: 'RolloutAborted: Rollout aborted update to revision 3: Metric "alb-5xx" assessed Failed due to failed (1) > failureLimit (0)',
      abort: true,
      currentPodHash: 'c',
      stableRS: 'b',
      currentStepIndex: 0,
      canary: { currentStepAnalysisRunStatus: { name: 'web-c-3-1', status: 'Failed', message: 'Metric "alb-5xx" assessed Failed' } },
    });
    const v = checkArgoRollout(view(), snap(ro));
    assert.equal(v.outcome, 'failed');
    assert.equal(v.result.failed, true);
    assert.match(v.result.message, /reports Degraded: RolloutAborted: Rollout aborted update to revision 3/);
    assert.match(v.result.message, /traffic is back on the stable ReplicaSet \(b\)/);
    assert.match(v.result.message, /AnalysisRun web-c-3-1 is Failed: Metric "alb-5xx" assessed Failed/);
    assert.match(v.result.hint ?? '', /kubectl argo rollouts undo web -n shop/);
  });

  it('new pods crash-looping: fails before Argo\'s progress deadline', () => {
    const ro = rollout({ phase: 'Progressing', currentPodHash: 'c', stableRS: 'b', currentStepIndex: 0 });
    const v = checkArgoRollout(view(), snap(ro, { pods: [pod('web-c-1', 'c', '10.0.0.5', { crash: true, gates: [GATE_C, GATE_S] })] }));
    assert.equal(v.outcome, 'failed');
    assert.match(v.result.message, /crash-loop/);
  });

  it('a Rollout\'s new pods may carry no gate (Argo points its Services at them after they exist): judged by target health, not failed', () => {
    const ro = rollout({ phase: 'Healthy', currentPodHash: 'b', stableRS: 'b' });
    const ungated = [pod('web-b-1', 'b', '10.0.0.3'), pod('web-b-2', 'b', '10.0.0.4')];
    assert.equal(checkArgoRollout(view(), snap(ro, { pods: ungated })).outcome, 'healthy');
    // A gate a pod carries must be True.
    const notTrue = pod('web-b-1', 'b', '10.0.0.3', { gates: [GATE_C] });
    (notTrue.status as JsonObject).conditions = [{ type: GATE_C, status: 'False' }];
    const v = checkArgoRollout(view(), snap(ro, { pods: [notTrue, ungated[1] as KubeObject] }));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /readiness gate k8s-canary not True yet/);
  });

  it('not observed yet: pending, and nothing about the pods is judged', () => {
    const v = checkArgoRollout(view(), snap(rollout({ observedGeneration: '1', phase: 'Degraded', abort: true }, { generation: 2 })));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /waiting for rollout spec update to be observed/);
  });
});

describe('Services whose selector Argo keeps', () => {
  const svc = (selector: Record<string, string>, name = 'web-canary'): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { selector, ports: [{ port: 80 }] } });
  it('is Argo\'s when the live selector is the manifest\'s plus only rollouts-pod-template-hash', () => {
    assert.equal(selectorIsArgos(svc({ app: 'web' }), svc({ app: 'web', 'rollouts-pod-template-hash': 'abc' })), true);
    assert.equal(selectorIsArgos(svc({ app: 'web' }), svc({ app: 'web' })), false, 'Argo has not touched it');
    assert.equal(selectorIsArgos(svc({ app: 'web2' }), svc({ app: 'web', 'rollouts-pod-template-hash': 'abc' })), false, 'the manifest changes the selector: applied (and a conflict says so)');
    assert.equal(selectorIsArgos(svc({ app: 'web' }), undefined), false);
    assert.deepEqual(withoutSelector(svc({ app: 'web' })).spec, { ports: [{ port: 80 }] });
    assert.deepEqual([...argoManagedServices([rollout({})])].sort(), ['shop/web-canary', 'shop/web-stable']);
  });
});

describe('a status from before the new template', () => {
  it('is not believed while currentPodHash is still the previous release\'s, though observedGeneration caught up', () => {
    const stale = rollout({ phase: 'Paused', currentPodHash: 'b', stableRS: 'a', currentStepIndex: 1, pauseConditions: [{ reason: 'CanaryPauseStep' }] });
    const v = checkArgoRollout(view({ staleHash: 'b' }), snap(stale));
    assert.equal(v.outcome, 'pending');
    assert.match(v.result.message, /waiting for Argo to start the new template \(status\.currentPodHash is still the previous release's b/);
    assert.equal(checkArgoRollout(view({ staleHash: 'a' }), snap(stale)).outcome, 'paused');
  });
});

describe('the canary header route the probe can use', () => {
  const steps: JsonObject[] = [
    { setWeight: 20 },
    { setHeaderRoute: { name: 'canary-probe', match: [{ headerName: 'X-Canary', headerValue: { exact: '1' } }] } },
    { analysis: { templates: [{ templateName: 'alb-rollout-5xx' }] } },
    { setHeaderRoute: { name: 'canary-probe' } },
    { setWeight: 100 },
  ];
  it('is the route set by the steps before the current one and not removed since', () => {
    const at = (i: number) => activeHeaderRoute(rollout({ currentStepIndex: i }, { steps }));
    assert.equal(at(1), undefined, 'not yet set');
    assert.deepEqual(at(2), { name: 'canary-probe', headers: { 'x-canary': '1' } });
    assert.equal(at(4), undefined, 'removed by the step without match');
    assert.equal(activeHeaderRoute(rollout({}, { steps })), undefined, 'no step index: none');
  });
});
