import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { CreateListenerCommand, CreateLoadBalancerCommand, CreateTargetGroupCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, type E2eLab } from './helpers.js';

/**
 * The load-balancer shapes of issue 10 through `deploy`, under traffic, on both tiers: an IngressGroup across two
 * namespaces, an NLB Service, and a TargetGroupBinding the user made for a target group created through the ELBv2 API.
 */

interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  timeline: Array<{ kind: string; message: string }>;
  targetGroupArns: string[];
  guard?: { decision: { verdict: string } };
}

const IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048';

function namespace(ns: string): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n  labels:\n    elbv2.k8s.aws/pod-readiness-gate-inject: enabled\n`;
}

function deployment(ns: string, app: string, tag: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${ns}
spec:
  replicas: 2
  selector:
    matchLabels: { app: ${app} }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }
  template:
    metadata:
      labels: { app: ${app} }
    spec:
      terminationGracePeriodSeconds: 70
      containers:
        - name: web
          image: ${IMAGE}:${tag}
          ports: [{ containerPort: 80 }]
          readinessProbe: { httpGet: { path: /, port: 80 }, periodSeconds: 2 }
          lifecycle:
            preStop:
              exec: { command: ["/bin/sh", "-c", "sleep 40"] }
`;
}

function service(ns: string, app: string, annotations: Record<string, string> = {}, type = 'ClusterIP'): string {
  const ann = Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"\n`).join('');
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${app}\n  namespace: ${ns}\n${ann ? `  annotations:\n${ann}` : ''}spec:\n  type: ${type}\n  selector: { app: ${app} }\n  ports:\n    - { port: 80, targetPort: 80, protocol: TCP }\n`;
}

function ingress(ns: string, app: string, path: string, group: string, order: number): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${app}
  namespace: ${ns}
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=30
    alb.ingress.kubernetes.io/group.name: ${group}
    alb.ingress.kubernetes.io/group.order: "${order}"
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - path: ${path}
            pathType: Prefix
            backend: { service: { name: ${app}, port: { number: 80 } } }
`;
}

async function writeSet(l: E2eLab, name: string, files: Record<string, string>): Promise<string> {
  const dir = join(l.dir, name);
  await mkdir(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  return dir;
}

/** The update under traffic: every URL gets a steady loop; zero non-2xx on each, and the new version answers. */
async function updateUnderTraffic(l: E2eLab, urls: string[], dir: string, reportFile: string, extra: string[] = []): Promise<Report> {
  const loads = urls.map((u) => traffic(u, 25));
  await waitFor(() => loads.every((x) => x.records.length >= 25) || undefined, { timeoutMs: 15_000, what: 'traffic to start' });
  const update = await l.cli(['deploy', '-f', dir, '--report', reportFile, ...extra, ...labArgs(l, '3s')], { timeoutMs: 240_000 });
  assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
  await waitFor(() => loads.every((x) => x.records.length >= 150) || undefined, { timeoutMs: 30_000, what: '150 requests per URL' });
  for (const [i, load] of loads.entries()) {
    const summary = await load.stop();
    assert.equal(summary.non2xx, 0, `${urls[i]}: non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
    assert.ok(Object.keys(summary.versions).some((v) => v.endsWith(':v2')), `${urls[i]}: the new version answered (${JSON.stringify(summary.versions)})`);
  }
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  assert.equal(report.result, 'succeeded');
  assert.equal(report.guard?.decision.verdict, 'pass', 'the guard watched the rollout and the bake');
  assert.ok(report.timeline.some((e) => e.kind === 'target-state' && /draining/.test(e.message)), 'old targets were seen draining');
  return report;
}

describeTiers('shapes through deploy: an IngressGroup across two namespaces', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('one ALB for both namespaces; both Deployments roll out with their own target group checked, zero non-2xx on both paths', async () => {
    const set = (tag: string): Record<string, string> => ({
      '1-ns.yaml': `${namespace('team-a')}---\n${namespace('team-b')}`,
      '2-svc.yaml': `${service('team-a', 'api')}---\n${service('team-b', 'web')}`,
      '3-ing.yaml': `${ingress('team-a', 'api', '/api', 'shared', 10)}---\n${ingress('team-b', 'web', '/', 'shared', 20)}`,
      '4-deploy.yaml': `${deployment('team-a', 'api', tag)}---\n${deployment('team-b', 'web', tag)}`,
    });
    const install = await l.cli(['deploy', '-f', await writeSet(l, 'group-v1', set('v1')), ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const group = l.lab.loadBalancers().filter((lb) => lb.type === 'application');
    assert.equal(group.length, 1, `one ALB for the group: ${JSON.stringify(group)}`);
    assert.deepEqual([...(group[0]?.ingresses ?? [])].sort(), ['team-a/api', 'team-b/web']);
    const url = group[0]?.listeners.find((x) => x.port === 80)?.address;
    assert.ok(url, `the group ALB's HTTP:80 listener in lab.json: ${JSON.stringify(group)}`);
    const report = await updateUnderTraffic(l, [new URL('/api', url).href, new URL('/', url).href], await writeSet(l, 'group-v2', set('v2')), join(l.dir, 'group.json'));
    assert.equal(report.targetGroupArns.length, 2, 'each member\'s target group was checked');
  });
});

describeTiers('shapes through deploy: an NLB Service (aws-load-balancer-type external, nlb-target-type ip)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('waits for the NLB\'s binding, then rolls out with gates, healthy TCP targets and drain, zero failed requests through the NLB', async () => {
    const nlb = {
      'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing',
    };
    const set = (tag: string): Record<string, string> => ({ '1-ns.yaml': namespace('nlb-app'), '2-svc.yaml': service('nlb-app', 'echo', nlb, 'LoadBalancer'), '4-deploy.yaml': deployment('nlb-app', 'echo', tag) });
    const v1 = await writeSet(l, 'nlb-v1', set('v1'));
    const plan = await l.cli(['plan', '-f', v1]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /the NLB of Service nlb-app\/echo has the TargetGroupBinding for port 80 with targetType ip/);
    // A first install with no traffic yet: the guard cannot measure (no probe: an NLB has no HTTP hostname to probe).
    const install = await l.cli(['deploy', '-f', v1, '--on-inconclusive', 'pass', ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const lb = l.lab.loadBalancers().find((x) => x.type === 'network');
    const address = lb?.listeners.find((x) => x.port === 80)?.address;
    assert.ok(address, `the NLB and its TCP:80 listener in lab.json: ${JSON.stringify(l.lab.loadBalancers())}`);
    const report = await updateUnderTraffic(l, [`http://${address}/`], await writeSet(l, 'nlb-v2', set('v2')), join(l.dir, 'nlb.json'), ['--probe-url', `http://${address}/`]);
    assert.equal(report.targetGroupArns.length, 1);
  });
});

describeTiers('shapes through deploy: a TargetGroupBinding you made, for a target group created through the ELBv2 API', (tier) => {
  let l: E2eLab;
  let tgArn = '';
  before(async () => {
    l = await e2eLab({}, tier);
    // "Terraform": the ALB, its target group and listener, made with the unmodified AWS SDK.
    const elbv2 = new ElasticLoadBalancingV2Client({ region: l.lab.region, endpoint: l.lab.aws.elbv2Url, credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' }, maxAttempts: 5 });
    const lb = (await elbv2.send(new CreateLoadBalancerCommand({ Name: 'terraform-alb', Type: 'application', Scheme: 'internet-facing' }))).LoadBalancers?.[0];
    const tg = (await elbv2.send(new CreateTargetGroupCommand({ Name: 'terraform-app', Protocol: 'HTTP', Port: 80, TargetType: 'ip', VpcId: 'vpc-0a1b2c3d4e5f60718', HealthCheckPath: '/', HealthCheckIntervalSeconds: 10, HealthyThresholdCount: 2 }))).TargetGroups?.[0];
    tgArn = String(tg?.TargetGroupArn);
    await elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb?.LoadBalancerArn, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tgArn }] }));
    elbv2.destroy();
  });
  after(async () => {
    await l.stop();
  });

  it('the binding is a route: gates, healthy targets, drain and the guard on the user\'s target group, zero non-2xx', async () => {
    const tgb = `apiVersion: elbv2.k8s.aws/v1beta1\nkind: TargetGroupBinding\nmetadata:\n  name: app\n  namespace: tf-app\nspec:\n  targetGroupARN: ${tgArn}\n  targetType: ip\n  serviceRef: { name: app, port: 80 }\n`;
    const set = (tag: string): Record<string, string> => ({ '1-ns.yaml': namespace('tf-app'), '2-svc.yaml': service('tf-app', 'app'), '3-tgb.yaml': tgb, '4-deploy.yaml': deployment('tf-app', 'app', tag) });
    const v1 = await writeSet(l, 'tgb-v1', set('v1'));
    const plan = await l.cli(['plan', '-f', v1]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /TargetGroupBinding tf-app\/app \(yours\) exists with a targetGroupARN for Service tf-app\/app port 80/);
    const lb = l.lab.loadBalancers().find((x) => x.name === 'terraform-alb');
    const url = lb?.listeners.find((x) => x.port === 80)?.address;
    assert.ok(url, `the API-made ALB in lab.json: ${JSON.stringify(l.lab.loadBalancers())}`);
    // The probe goes to the user's ALB (no Ingress names its hostname).
    const probe = ['--probe-url', new URL('/', url).href];
    const install = await l.cli(['deploy', '-f', v1, ...probe, ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const report = await updateUnderTraffic(l, [new URL('/', url).href], await writeSet(l, 'tgb-v2', set('v2')), join(l.dir, 'tgb.json'), probe);
    assert.deepEqual(report.targetGroupArns, [tgArn]);
  });
});
