/**
 * IngressGroups in the lab, through the real clients: one ALB for `group.name` across namespaces, rules in
 * `group.order`, LBC's validation (order range, conflicting scheme), an Ingress leaving the group, the hostname on
 * every member, one TargetGroupBinding per member backend labelled with the group stack, and traffic served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DescribeLoadBalancersCommand, DescribeRulesCommand, DescribeListenersCommand, DescribeTagsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { lbcGroupLoadBalancerName } from '../../src/lab/alb/names.js';
import { TrafficGenerator } from '../../src/lab/traffic/index.js';
import { waitFor } from '../helpers/wait.js';
import { httpGet } from './alb-helpers.js';
import { deployment, ingress, namespace, service, shapesLab, type ShapesLab } from './shapes-helpers.js';

const GROUP = 'shared';

function statusHost(l: ShapesLab, ns: string, name: string): string | undefined {
  const ing = l.lab.store.get('Ingress', ns, name);
  return ((ing?.status as { loadBalancer?: { ingress?: Array<{ hostname?: string }> } } | undefined)?.loadBalancer?.ingress ?? [])[0]?.hostname;
}

function finalizers(l: ShapesLab, ns: string, name: string): string[] {
  return (l.lab.store.get('Ingress', ns, name)?.metadata.finalizers as string[] | undefined) ?? [];
}

function events(l: ShapesLab, ns: string, reason: string): string[] {
  return l.lab.store
    .list('Event', ns)
    .items.filter((e) => e.reason === reason)
    .map((e) => String(e.message));
}

async function ruleSummary(l: ShapesLab, lbArn: string): Promise<Array<{ priority: string; paths: string[]; tg: string }>> {
  const listener = (await l.elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: lbArn }))).Listeners![0]!;
  const rules = (await l.elbv2.send(new DescribeRulesCommand({ ListenerArn: listener.ListenerArn! }))).Rules ?? [];
  return rules
    .filter((r) => !r.IsDefault)
    .map((r) => ({
      priority: r.Priority!,
      paths: r.Conditions?.find((c) => c.Field === 'path-pattern')?.PathPatternConfig?.Values ?? [],
      tg: r.Actions?.[0]?.TargetGroupArn ?? '',
    }));
}

describe('IngressGroup: one ALB across namespaces', () => {
  let l: ShapesLab;
  before(async () => {
    l = await shapesLab();
    await l.apply(namespace('team-a'), namespace('team-b'));
    await l.apply(service('team-a', 'api'), service('team-b', 'web'));
    await l.apply(
      ingress('team-a', 'api', 'api', '/api', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '10' }),
      ingress('team-b', 'web', 'web', '/', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '20' }),
    );
    // Pods after the TGBs exist, so that the webhook injects the gates (as LBC's docs ask).
    await waitFor(() => l.lab.store.list('TargetGroupBinding', 'team-a').items.length === 1 && l.lab.store.list('TargetGroupBinding', 'team-b').items.length === 1, {
      timeoutMs: 15_000,
      what: 'one TargetGroupBinding per member backend',
    });
    await l.apply(deployment('team-a', 'api'), deployment('team-b', 'web'));
  });
  after(() => l.stop());

  test('one ALB named for the group; every member gets its hostname and the group finalizer; TGBs carry the stack label', async () => {
    const host = await waitFor(() => statusHost(l, 'team-a', 'api'), { timeoutMs: 15_000, what: 'team-a/api status hostname' });
    assert.equal(statusHost(l, 'team-b', 'web'), host);
    const lbs = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? [];
    assert.equal(lbs.length, 1);
    const lb = lbs[0]!;
    assert.equal(lb.DNSName, host);
    assert.equal(lb.LoadBalancerName, lbcGroupLoadBalancerName(GROUP, ['lab', GROUP, 'internal']));
    assert.match(lb.LoadBalancerName!, /^k8s-shared-[0-9a-f]{10}$/);
    const tags = (await l.elbv2.send(new DescribeTagsCommand({ ResourceArns: [lb.LoadBalancerArn!] }))).TagDescriptions![0]!.Tags ?? [];
    assert.ok(tags.some((t) => t.Key === 'ingress.k8s.aws/stack' && t.Value === GROUP), JSON.stringify(tags));
    assert.deepEqual(finalizers(l, 'team-a', 'api'), ['group.ingress.k8s.aws/shared']);
    assert.deepEqual(finalizers(l, 'team-b', 'web'), ['group.ingress.k8s.aws/shared']);
    for (const ns of ['team-a', 'team-b']) {
      const [tgb] = l.lab.store.list('TargetGroupBinding', ns).items;
      assert.deepEqual(tgb!.metadata.labels, { 'ingress.k8s.aws/stack': GROUP });
      assert.match(tgb!.metadata.name, ns === 'team-a' ? /^k8s-teama-api-[0-9a-f]{10}$/ : /^k8s-teamb-web-[0-9a-f]{10}$/);
    }
    // kubectl sees the same through the printer columns
    const out = await l.kubectl(['get', 'ingress', '-A', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.loadBalancer.ingress[0].hostname}{"\\n"}{end}']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout.trim().split('\n').sort(), [`team-a/api=${host}`, `team-b/web=${host}`]);
  });

  test('rules are numbered across members in group.order; each path reaches its own namespace; traffic has zero non-2xx', async () => {
    const lbArn = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers![0]!.LoadBalancerArn!;
    const rules = await ruleSummary(l, lbArn);
    assert.deepEqual(
      rules.map((r) => [r.priority, r.paths]),
      [
        ['1', ['/api', '/api/*']],
        ['2', ['/*']],
      ],
    );
    const [apiTgb] = l.lab.store.list('TargetGroupBinding', 'team-a').items;
    assert.equal(rules[0]!.tg, (apiTgb!.spec as { targetGroupARN: string }).targetGroupARN);
    // gates injected and True, targets healthy, both paths served by their own pods
    await waitFor(
      () =>
        ['team-a', 'team-b'].every((ns) => {
          const pods = l.lab.store.list('Pod', ns).items;
          return pods.length === 2 && pods.every((p) => ((p.status as { conditions?: Array<{ type: string; status: string }> }).conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
        }),
      { timeoutMs: 30_000, what: 'all four pods Ready (gates True)' },
    );
    for (const ns of ['team-a', 'team-b']) {
      for (const p of l.lab.store.list('Pod', ns).items) {
        assert.ok(((p.spec as { readinessGates?: Array<{ conditionType: string }> }).readinessGates ?? []).some((g) => g.conditionType.startsWith('target-health.elbv2.k8s.aws/k8s-')));
      }
    }
    const url = (await l.labJson()).loadBalancers[0]!.url!;
    await waitFor(async () => (await httpGet(`${url}/api/x`)).status === 200 && (await httpGet(`${url}/`)).status === 200, { timeoutMs: 20_000, what: 'both paths 200' });
    const api = await httpGet(`${url}/api/orders`);
    assert.match(String(api.headers['x-lab-pod']), /^api-/);
    const web = await httpGet(`${url}/index.html`);
    assert.match(String(web.headers['x-lab-pod']), /^web-/);
    const t = new TrafficGenerator({ url: `${url}/api/ping`, ratePerSecond: 40, maxRequests: 60, maxDurationMs: 10_000, timeoutMs: 5_000 });
    t.start();
    const r = await t.finished();
    assert.equal(r.requests, 60);
    assert.equal(r.non2xx, 0, JSON.stringify(r.responses));
  });

  test('lab.json lists the group ALB with both member Ingresses and both Services; albs keeps one entry per Ingress', async () => {
    const s = await l.labJson();
    assert.equal(s.loadBalancers.length, 1);
    const lb = s.loadBalancers[0]!;
    assert.equal(lb.type, 'application');
    assert.equal(lb.createdBy, 'ingress');
    assert.deepEqual(lb.ingresses.sort(), ['team-a/api', 'team-b/web']);
    assert.deepEqual(lb.services, ['team-a/api', 'team-b/web']);
    assert.deepEqual(lb.listeners.map((x) => [x.port, x.protocol, x.address]), [[80, 'HTTP', lb.url]]);
    assert.deepEqual(s.albs.map((a) => a.ingress).sort(), ['team-a/api', 'team-b/web']);
    assert.ok(s.albs.every((a) => a.hostname === lb.hostname && a.url === lb.url));
  });

  test('an out-of-range group.order fails the whole group (nothing changes); fixed, the Ingress joins in order', async () => {
    const lbArn = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers![0]!.LoadBalancerArn!;
    await l.apply(service('team-a', 'api'));
    await l.apply(ingress('team-a', 'extra', 'api', '/extra', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '5000' }));
    // The reconcile runs (and fails) a few times; the group keeps its two rules and the new member gets nothing.
    await new Promise((r) => setTimeout(r, l.lab.clock.ms(l.lab.clock.delay('lbcIngressReconcileSeconds')) * 3));
    assert.equal((await ruleSummary(l, lbArn)).length, 2);
    assert.equal(statusHost(l, 'team-a', 'extra'), undefined);
    assert.deepEqual(finalizers(l, 'team-a', 'extra'), []);
    await l.apply(ingress('team-a', 'extra', 'api', '/extra', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '15' }));
    await waitFor(async () => (await ruleSummary(l, lbArn)).length === 3, { timeoutMs: 15_000, what: 'three rules' });
    assert.deepEqual(
      (await ruleSummary(l, lbArn)).map((r) => r.paths[0]),
      ['/api', '/extra', '/*'],
    );
    await waitFor(() => statusHost(l, 'team-a', 'extra'), { timeoutMs: 10_000, what: 'team-a/extra hostname' });
    // Two Ingresses on one Service port → two target groups and two TGBs (LBC's resource id is per Ingress).
    await waitFor(() => l.lab.store.list('TargetGroupBinding', 'team-a').items.length === 2, { timeoutMs: 10_000, what: 'two TGBs in team-a' });
  });

  test('conflicting scheme across members: FailedBuildModel on every member with LBC text', async () => {
    // Only schemes set explicitly count: web says internal (the default, so the ALB stays), extra internet-facing.
    await l.apply(ingress('team-b', 'web', 'web', '/', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '20', 'alb.ingress.kubernetes.io/scheme': 'internal' }));
    await l.apply(
      ingress('team-a', 'extra', 'api', '/extra', {
        'alb.ingress.kubernetes.io/group.name': GROUP,
        'alb.ingress.kubernetes.io/group.order': '15',
        'alb.ingress.kubernetes.io/scheme': 'internet-facing',
      }),
    );
    const want = 'Failed build model due to conflicting scheme: map[internal:{} internet-facing:{}]';
    await waitFor(() => events(l, 'team-b', 'FailedBuildModel').includes(want), { timeoutMs: 10_000, what: 'the event on team-b/web', describe: () => JSON.stringify(events(l, 'team-b', 'FailedBuildModel')) });
    assert.ok(events(l, 'team-a', 'FailedBuildModel').includes(want));
    await l.apply(ingress('team-a', 'extra', 'api', '/extra', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '15' }));
  });

  test('a new scheme for the whole group replaces the ALB: the old one is deleted, every member gets the new hostname, it serves', async () => {
    const old = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers!;
    assert.equal(old.length, 1);
    const web = { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '20', 'alb.ingress.kubernetes.io/scheme': 'internet-facing' };
    await l.apply(ingress('team-b', 'web', 'web', '/', web));
    await l.apply(ingress('team-a', 'extra', 'api', '/extra', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '15', 'alb.ingress.kubernetes.io/scheme': 'internet-facing' }));
    await l.apply(ingress('team-a', 'api', 'api', '/api', { 'alb.ingress.kubernetes.io/group.name': GROUP, 'alb.ingress.kubernetes.io/group.order': '10', 'alb.ingress.kubernetes.io/scheme': 'internet-facing' }));
    const lb = await waitFor(
      async () => {
        const lbs = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? [];
        return lbs.length === 1 && lbs[0]!.Scheme === 'internet-facing' ? lbs[0] : undefined;
      },
      { timeoutMs: 20_000, what: 'one internet-facing ALB for the group' },
    );
    assert.equal(lb.LoadBalancerName, lbcGroupLoadBalancerName(GROUP, ['lab', GROUP, 'internet-facing']));
    for (const [ns, name] of [['team-a', 'api'], ['team-a', 'extra'], ['team-b', 'web']] as const) {
      await waitFor(() => statusHost(l, ns, name) === lb.DNSName, { timeoutMs: 10_000, what: `${ns}/${name} on the new ALB` });
    }
    const url = (await l.labJson()).loadBalancers[0]!.url!;
    await waitFor(async () => (await httpGet(`${url}/api/x`)).status === 200, { timeoutMs: 20_000, what: '/api served by the new ALB' });
  });

  test('an Ingress leaving the group: its rules and TGB leave the shared ALB, it gets its own ALB and the implicit finalizer', async () => {
    const shared = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers![0]!;
    await l.apply(ingress('team-a', 'extra', 'api', '/extra')); // no group.name any more
    await waitFor(async () => (await ruleSummary(l, shared.LoadBalancerArn!)).length === 2, { timeoutMs: 15_000, what: 'the /extra rule gone from the shared ALB' });
    await waitFor(() => finalizers(l, 'team-a', 'extra').join() === 'ingress.k8s.aws/resources', { timeoutMs: 15_000, what: 'the implicit finalizer only', describe: () => finalizers(l, 'team-a', 'extra').join() });
    const own = await waitFor(
      async () => {
        const h = statusHost(l, 'team-a', 'extra');
        return h && h !== shared.DNSName ? h : undefined;
      },
      { timeoutMs: 15_000, what: 'team-a/extra on its own ALB' },
    );
    const lbs = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? [];
    assert.equal(lbs.length, 2);
    assert.match(lbs.find((x) => x.DNSName === own)!.LoadBalancerName!, /^k8s-teama-extra-[0-9a-f]{10}$/);
    // The group's TGB for extra is deleted (it goes once its controller has deregistered the targets: a finalizer).
    const want = [JSON.stringify({ 'ingress.k8s.aws/stack': GROUP }), JSON.stringify({ 'ingress.k8s.aws/stack-namespace': 'team-a', 'ingress.k8s.aws/stack-name': 'extra' })].sort().join();
    const labels = (): string => l.lab.store.list('TargetGroupBinding', 'team-a').items.map((t) => JSON.stringify(t.metadata.labels)).sort().join();
    await waitFor(() => labels() === want, { timeoutMs: 15_000, what: 'team-a TGBs: the group one for api, the implicit one for extra', describe: labels });
  });

  test('deleting every member deletes the group ALB; the finalizers go', async () => {
    await l.objects.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'api', namespace: 'team-a' } });
    await l.objects.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'team-b' } });
    await waitFor(() => !l.lab.store.get('Ingress', 'team-a', 'api') && !l.lab.store.get('Ingress', 'team-b', 'web'), { timeoutMs: 20_000, what: 'both Ingresses gone' });
    const names = ((await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? []).map((x) => x.LoadBalancerName);
    assert.deepEqual(names.filter((n) => n?.startsWith('k8s-shared-')), []);
    assert.equal(l.lab.store.list('TargetGroupBinding', 'team-b').items.length, 0);
  });
});
