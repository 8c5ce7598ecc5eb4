/**
 * A user-made TargetGroupBinding on an ALB "made by Terraform": the ALB, target group and listener are created
 * through the lab's ELBv2 API with the unmodified AWS SDK (which answers errors as AWS does), then a TGB naming
 * only the ARN and the Service is applied with kubectl — the LBC emulation defaults it, injects gates, registers
 * the pods, serves traffic through the ALB, drains on scale-down and releases everything when the TGB goes.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeTargetGroupsCommand,
  ModifyTargetGroupAttributesCommand,
  type ElasticLoadBalancingV2ServiceException,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { TrafficGenerator } from '../../src/lab/traffic/index.js';
import { waitFor } from '../helpers/wait.js';
import { deployment, namespace, service, shapesLab, type ShapesLab } from './shapes-helpers.js';

const NS = 'tf-app';
const VPC = 'vpc-0a1b2c3d4e5f60718';

async function awsError(p: Promise<unknown>): Promise<{ name: string; message: string; status: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as ElasticLoadBalancingV2ServiceException;
    // The SDK names modeled errors after their exception (wire code `TargetGroupNotFound` → TargetGroupNotFoundException).
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode ?? 0 };
  }
  throw new Error('the call succeeded; an AWS error was expected');
}

function tgbYaml(name: string, arn: string): string {
  return `apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  targetGroupARN: ${arn}
  serviceRef:
    name: app
    port: 80
`;
}

function podConds(l: ShapesLab): Array<{ name: string; gates: string[]; conds: Array<{ type: string; status: string; message?: string }> }> {
  return l.lab.store.list('Pod', NS).items.map((p) => ({
    name: p.metadata.name,
    gates: ((p.spec as { readinessGates?: Array<{ conditionType: string }> }).readinessGates ?? []).map((g) => g.conditionType),
    conds: ((p.status as { conditions?: Array<{ type: string; status: string; message?: string }> } | undefined)?.conditions ?? []),
  }));
}

describe('ELBv2 API validation, as AWS answers', () => {
  let l: ShapesLab;
  before(async () => {
    l = await shapesLab();
  });
  after(() => l.stop());

  test('CreateTargetGroup / CreateListener errors: ValidationError, DuplicateTargetGroupName, TargetGroupNotFound, IncompatibleProtocols, TargetGroupAssociationLimit', async () => {
    let e = await awsError(l.elbv2.send(new CreateTargetGroupCommand({ Name: '-bad-', Protocol: 'HTTP', Port: 80, TargetType: 'ip', VpcId: VPC })));
    assert.equal(e.name, 'ValidationError');
    assert.equal(e.status, 400);
    e = await awsError(l.elbv2.send(new CreateTargetGroupCommand({ Name: 'no-port', Protocol: 'HTTP', TargetType: 'ip', VpcId: VPC })));
    assert.deepEqual([e.name, e.message], ['ValidationError', "A port must be specified for a target group with target type 'ip'"]);
    e = await awsError(l.elbv2.send(new CreateTargetGroupCommand({ Name: 'bad-hc', Protocol: 'HTTP', Port: 80, TargetType: 'ip', VpcId: VPC, HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 5 })));
    assert.deepEqual([e.name, e.message], ['ValidationError', 'Health check interval must be greater than the timeout.']);
    const tg = (await l.elbv2.send(new CreateTargetGroupCommand({ Name: 'app-tg', Protocol: 'HTTP', Port: 8080, TargetType: 'ip', VpcId: VPC }))).TargetGroups![0]!;
    // The same call again is idempotent; the same name with other settings is not.
    assert.equal((await l.elbv2.send(new CreateTargetGroupCommand({ Name: 'app-tg', Protocol: 'HTTP', Port: 8080, TargetType: 'ip', VpcId: VPC }))).TargetGroups![0]!.TargetGroupArn, tg.TargetGroupArn);
    e = await awsError(l.elbv2.send(new CreateTargetGroupCommand({ Name: 'app-tg', Protocol: 'HTTP', Port: 9090, TargetType: 'ip', VpcId: VPC })));
    assert.deepEqual([e.name, e.message], ['DuplicateTargetGroupNameException', "A target group with the same name 'app-tg' exists, but with different settings"]);
    e = await awsError(l.elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tg.TargetGroupArn!.replace(/[0-9a-f]{16}$/, '0000000000000000')] })));
    assert.equal(e.name, 'TargetGroupNotFoundException');
    e = await awsError(l.elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tg.TargetGroupArn!, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '9999' }] })));
    assert.equal(e.name, 'ValidationError');

    const lb = (await l.elbv2.send(new CreateLoadBalancerCommand({ Name: 'tf-alb', Type: 'application', Scheme: 'internet-facing' }))).LoadBalancers![0]!;
    e = await awsError(l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn!.replace('app-tg', 'nope') }] })));
    assert.equal(e.name, 'TargetGroupNotFoundException');
    const tcpTg = (await l.elbv2.send(new CreateTargetGroupCommand({ Name: 'tcp-tg', Protocol: 'TCP', Port: 8080, TargetType: 'ip', VpcId: VPC }))).TargetGroups![0]!;
    e = await awsError(l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tcpTg.TargetGroupArn! }] })));
    assert.equal(e.name, 'IncompatibleProtocolsException');
    await l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn! }] }));
    const other = (await l.elbv2.send(new CreateLoadBalancerCommand({ Name: 'tf-alb-2', Type: 'application' }))).LoadBalancers![0]!;
    e = await awsError(l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: other.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn! }] })));
    assert.deepEqual([e.name, e.message], ['TargetGroupAssociationLimitException', `The following target groups cannot be associated with more than one load balancer: ${tg.TargetGroupArn}`]);
    e = await awsError(l.elbv2.send(new CreateLoadBalancerCommand({ Name: 'tf-alb', Type: 'network' })));
    assert.equal(e.name, 'DuplicateLoadBalancerNameException');
  });
});

describe('a user-made TargetGroupBinding on an ALB made through the ELBv2 API', () => {
  let l: ShapesLab;
  let tgArn = '';
  let url = '';
  before(async () => {
    l = await shapesLab();
    const lb = (await l.elbv2.send(new CreateLoadBalancerCommand({ Name: 'terraform-alb', Type: 'application', Scheme: 'internet-facing' }))).LoadBalancers![0]!;
    const tg = (
      await l.elbv2.send(
        new CreateTargetGroupCommand({
          Name: 'terraform-app',
          Protocol: 'HTTP',
          Port: 8080,
          TargetType: 'ip',
          VpcId: VPC,
          HealthCheckPath: '/healthz',
          HealthCheckIntervalSeconds: 10,
          HealthyThresholdCount: 2,
        }),
      )
    ).TargetGroups![0]!;
    tgArn = tg.TargetGroupArn!;
    await l.elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }] }));
    await l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn!, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tgArn }] }));
    await l.apply(namespace(NS), service(NS, 'app'));
  });
  after(() => l.stop());

  test('kubectl apply of a TGB naming only the ARN: defaulted from DescribeTargetGroups (targetType ip, protocol, VPC)', async () => {
    const file = join(l.dir, 'tgb.yaml');
    await writeFile(file, tgbYaml('app', tgArn));
    const r = await l.kubectl(['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse((await l.kubectl(['get', 'targetgroupbinding', '-n', NS, 'app', '-o', 'json'])).stdout) as { spec: Record<string, unknown>; metadata: { finalizers?: string[] } };
    assert.equal(got.spec.targetType, 'ip');
    assert.equal(got.spec.ipAddressType, 'ipv4');
    assert.equal(got.spec.targetGroupProtocol, 'HTTP');
    assert.equal(got.spec.vpcID, VPC);
    await waitFor(async () => (JSON.parse((await l.kubectl(['get', 'targetgroupbinding', '-n', NS, 'app', '-o', 'json'])).stdout) as { metadata: { finalizers?: string[] } }).metadata.finalizers?.includes('elbv2.k8s.aws/resources'), {
      timeoutMs: 10_000,
      what: 'the TGB finalizer',
    });
  });

  test('the webhook denies, with LBC text: an unknown ARN (targetType cannot be defaulted), a second TGB on the same ARN', async () => {
    const bad = join(l.dir, 'bad.yaml');
    await writeFile(bad, tgbYaml('ghost', tgArn.replace(/[0-9a-f]{16}$/, '0000000000000000')));
    let r = await l.kubectl(['apply', '-f', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /admission webhook "mtargetgroupbinding\.elbv2\.k8s\.aws" denied the request: couldn't determine TargetType: operation error Elastic Load Balancing v2: DescribeTargetGroups, .*TargetGroupNotFound: One or more target groups not found/);
    const dup = join(l.dir, 'dup.yaml');
    await writeFile(dup, tgbYaml('app-again', tgArn));
    r = await l.kubectl(['apply', '-f', dup]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`TargetGroup ${tgArn} is already bound to following TargetGroupBindings [${NS}/app]`), r.stderr);
  });

  test('pods get the gate, register, turn healthy; the gate goes True; traffic through the API-made ALB has zero non-2xx', async () => {
    await l.apply(deployment(NS, 'app', { replicas: 3 }));
    await waitFor(() => podConds(l).length === 3 && podConds(l).every((p) => p.conds.some((c) => c.type === 'Ready' && c.status === 'True')), {
      timeoutMs: 30_000,
      what: 'three Ready pods',
      describe: () => JSON.stringify(podConds(l)),
    });
    for (const p of podConds(l)) {
      assert.deepEqual(p.gates, ['target-health.elbv2.k8s.aws/app']);
      assert.ok(p.conds.some((c) => c.type === 'target-health.elbv2.k8s.aws/app' && c.status === 'True'));
    }
    const health = await l.targetHealth(tgArn);
    assert.deepEqual(health.map((h) => h.TargetHealth?.State), ['healthy', 'healthy', 'healthy']);
    assert.ok(health.every((h) => h.Target?.Port === 8080));
    const s = await l.labJson();
    const lb = s.loadBalancers.find((x) => x.name === 'terraform-alb')!;
    assert.equal(lb.createdBy, 'api');
    assert.deepEqual(lb.services, [`${NS}/app`]);
    assert.deepEqual(lb.ingresses, []);
    url = lb.url!;
    const t = new TrafficGenerator({ url, ratePerSecond: 40, maxRequests: 60, maxDurationMs: 10_000, timeoutMs: 5_000 });
    t.start();
    const r = await t.finished();
    assert.equal(r.requests, 60);
    assert.equal(r.non2xx, 0, JSON.stringify(r.responses));
  });

  test('scale-down drains the removed target (draining, Target.DeregistrationInProgress), the rest stay healthy', async () => {
    await l.apply(deployment(NS, 'app', { replicas: 2 }));
    const draining = await waitFor(
      async () => {
        const h = await l.targetHealth(tgArn);
        return h.some((x) => x.TargetHealth?.State === 'draining') ? h : undefined;
      },
      { timeoutMs: 20_000, what: 'one draining target' },
    );
    const d = draining.find((x) => x.TargetHealth?.State === 'draining')!;
    assert.equal(d.TargetHealth?.Reason, 'Target.DeregistrationInProgress');
    assert.equal(draining.filter((x) => x.TargetHealth?.State === 'healthy').length, 2);
    // 30 s of deregistration delay later (simulated), the target is gone.
    await waitFor(async () => (await l.targetHealth(tgArn)).length === 2, { timeoutMs: 20_000, what: 'the drained target removed' });
  });

  test('deleting the TGB deregisters every target and releases the gates ("Target Group Binding is deleted")', async () => {
    const r = await l.kubectl(['delete', 'targetgroupbinding', '-n', NS, 'app', '--wait=true', '--timeout=30s']);
    assert.equal(r.code, 0, r.stderr);
    const h = await l.targetHealth(tgArn);
    assert.ok(h.length > 0 && h.every((x) => x.TargetHealth?.State === 'draining'), JSON.stringify(h.map((x) => x.TargetHealth)));
    for (const p of podConds(l)) {
      const c = p.conds.find((x) => x.type === 'target-health.elbv2.k8s.aws/app');
      assert.deepEqual([c?.status, c?.message], ['True', 'Target Group Binding is deleted']);
    }
  });
});
