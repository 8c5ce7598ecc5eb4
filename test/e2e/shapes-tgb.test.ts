import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { CreateListenerCommand, CreateLoadBalancerCommand, CreateTargetGroupCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { describeTiers, e2eLab, labArgs, type E2eLab } from './helpers.js';
import { deployment, namespace, service, updateUnderTraffic, writeSet } from './shapes-lb-helpers.js';

/** Issue 10 through deploy, under traffic, on both tiers: a TargetGroupBinding the user made for a target group created through the ELBv2 API ("Terraform"). */

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
