import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AddTagsCommand,
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DeleteListenerCommand,
  DeleteLoadBalancerCommand,
  DeleteRuleCommand,
  DeleteTargetGroupCommand,
  DescribeListenerAttributesCommand,
  DescribeListenerCertificatesCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeLoadBalancersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
  ElasticLoadBalancingV2ServiceException,
  ModifyListenerAttributesCommand,
  ModifyLoadBalancerAttributesCommand,
  RemoveTagsCommand,
  SetIpAddressTypeCommand,
  SetSecurityGroupsCommand,
  SetSubnetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { LabNetwork } from '../../src/lab/network.js';
import { startAwsApis, type AwsApis } from '../../src/lab/aws/index.js';
import { fastClock } from './alb-helpers.js';

const credentials = { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' };

async function elbError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ElasticLoadBalancingV2ServiceException, `expected an ELBv2 service error, got ${String(err)}`);
    return err.name;
  }
  assert.fail('expected the call to fail');
}

/** The calls the AWS Load Balancer Controller makes for one `ip`-target Ingress, in its order, through the real SDK. */
describe('ELBv2 lifecycle the AWS Load Balancer Controller drives, with the real SDK', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  let apis: AwsApis;
  let elbv2: ElasticLoadBalancingV2Client;

  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network: new LabNetwork() });
    apis = await startAwsApis({ alb, clock, clusterName: 'demo' });
    elbv2 = new ElasticLoadBalancingV2Client({ region: 'us-east-1', endpoint: apis.elbv2Url, credentials, retryStrategy: new ConfiguredRetryStrategy(2, (n) => 5 * n) });
  });
  after(async () => {
    elbv2.destroy();
    await apis.stop();
    await alb.stop();
  });

  test('load balancer: subnets and security groups read back as created and set; attributes described and modified', async () => {
    const created = await elbv2.send(
      new CreateLoadBalancerCommand({
        Name: 'k8s-default-web-0123456789',
        Type: 'application',
        Scheme: 'internet-facing',
        IpAddressType: 'ipv4',
        Subnets: ['subnet-0lab00000000000', 'subnet-0lab00000000001'],
        SecurityGroups: ['sg-0aaaaaaaaaaaaaaaa', 'sg-0bbbbbbbbbbbbbbbb'],
        Tags: [{ Key: 'elbv2.k8s.aws/cluster', Value: 'demo' }, { Key: 'ingress.k8s.aws/stack', Value: 'default/web' }],
      }),
    );
    const lbArn = created.LoadBalancers?.[0]?.LoadBalancerArn ?? '';
    assert.deepEqual(created.LoadBalancers?.[0]?.SecurityGroups, ['sg-0aaaaaaaaaaaaaaaa', 'sg-0bbbbbbbbbbbbbbbb']);
    const described = (await elbv2.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }))).LoadBalancers?.[0];
    assert.deepEqual(described?.AvailabilityZones?.map((z) => [z.SubnetId, z.ZoneName]), [
      ['subnet-0lab00000000000', 'us-east-1a'],
      ['subnet-0lab00000000001', 'us-east-1b'],
    ]);
    assert.deepEqual(described?.SecurityGroups, ['sg-0aaaaaaaaaaaaaaaa', 'sg-0bbbbbbbbbbbbbbbb']);

    await elbv2.send(new SetSecurityGroupsCommand({ LoadBalancerArn: lbArn, SecurityGroups: ['sg-0aaaaaaaaaaaaaaaa'] }));
    await elbv2.send(new SetSubnetsCommand({ LoadBalancerArn: lbArn, Subnets: ['subnet-0lab00000000001'] }));
    await elbv2.send(new SetIpAddressTypeCommand({ LoadBalancerArn: lbArn, IpAddressType: 'dualstack' }));
    const after = (await elbv2.send(new DescribeLoadBalancersCommand({ Names: ['k8s-default-web-0123456789'] }))).LoadBalancers?.[0];
    assert.deepEqual(after?.SecurityGroups, ['sg-0aaaaaaaaaaaaaaaa']);
    assert.deepEqual(after?.AvailabilityZones?.map((z) => z.SubnetId), ['subnet-0lab00000000001']);
    assert.equal(after?.IpAddressType, 'dualstack');

    const attrs = await elbv2.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn }));
    const map = Object.fromEntries((attrs.Attributes ?? []).map((a) => [a.Key, a.Value]));
    assert.equal(map['idle_timeout.timeout_seconds'], '60');
    assert.equal(map['routing.http2.enabled'], 'true');
    await elbv2.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn, Attributes: [{ Key: 'idle_timeout.timeout_seconds', Value: '120' }] }));
    const again = await elbv2.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn }));
    assert.equal(again.Attributes?.find((a) => a.Key === 'idle_timeout.timeout_seconds')?.Value, '120');
    assert.equal(await elbError(elbv2.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn, Attributes: [{ Key: 'no.such.key', Value: '1' }] }))), 'InvalidConfigurationRequestException');
    assert.equal(await elbError(elbv2.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn.replace(/[0-9a-f]{16}$/, '0000000000000000') }))), 'LoadBalancerNotFoundException');

    const tags = await elbv2.send(new DescribeTagsCommand({ ResourceArns: [lbArn] }));
    assert.deepEqual(tags.TagDescriptions?.[0]?.Tags?.map((t) => t.Key).sort(), ['elbv2.k8s.aws/cluster', 'ingress.k8s.aws/stack']);
    await elbv2.send(new AddTagsCommand({ ResourceArns: [lbArn], Tags: [{ Key: 'ingress.k8s.aws/resource', Value: 'LoadBalancer' }] }));
    await elbv2.send(new RemoveTagsCommand({ ResourceArns: [lbArn], TagKeys: ['ingress.k8s.aws/stack'] }));
    const tags2 = await elbv2.send(new DescribeTagsCommand({ ResourceArns: [lbArn] }));
    assert.deepEqual(tags2.TagDescriptions?.[0]?.Tags?.map((t) => t.Key).sort(), ['elbv2.k8s.aws/cluster', 'ingress.k8s.aws/resource']);
  });

  test('target group, listener with a fixed-response default, forward rule, listener attributes; then deleted in the controller order', async () => {
    const lbArn = (await elbv2.send(new DescribeLoadBalancersCommand({ Names: ['k8s-default-web-0123456789'] }))).LoadBalancers?.[0]?.LoadBalancerArn ?? '';
    const tg = await elbv2.send(
      new CreateTargetGroupCommand({
        Name: 'k8s-default-web-abcdef0123',
        TargetType: 'ip',
        Port: 8080,
        Protocol: 'HTTP',
        ProtocolVersion: 'HTTP1',
        IpAddressType: 'ipv4',
        VpcId: alb.vpcId,
        HealthCheckPath: '/healthz',
        HealthCheckIntervalSeconds: 15,
        HealthCheckTimeoutSeconds: 5,
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 2,
        Matcher: { HttpCode: '200' },
        Tags: [{ Key: 'elbv2.k8s.aws/cluster', Value: 'demo' }],
      }),
    );
    const tgArn = tg.TargetGroups?.[0]?.TargetGroupArn ?? '';
    assert.match(tgArn, /:targetgroup\/k8s-default-web-abcdef0123\//);
    const listener = await elbv2.send(
      new CreateListenerCommand({
        LoadBalancerArn: lbArn,
        Port: 80,
        Protocol: 'HTTP',
        DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { ContentType: 'text/plain', StatusCode: '404' } }],
      }),
    );
    const lsArn = listener.Listeners?.[0]?.ListenerArn ?? '';
    const la = await elbv2.send(new DescribeListenerAttributesCommand({ ListenerArn: lsArn }));
    assert.deepEqual(la.Attributes, [{ Key: 'routing.http.response.server.enabled', Value: 'true' }]);
    await elbv2.send(new ModifyListenerAttributesCommand({ ListenerArn: lsArn, Attributes: [{ Key: 'routing.http.response.server.enabled', Value: 'false' }] }));
    assert.deepEqual((await elbv2.send(new DescribeListenerAttributesCommand({ ListenerArn: lsArn }))).Attributes, [{ Key: 'routing.http.response.server.enabled', Value: 'false' }]);
    assert.deepEqual((await elbv2.send(new DescribeListenerCertificatesCommand({ ListenerArn: lsArn }))).Certificates, []);

    const rule = await elbv2.send(
      new CreateRuleCommand({
        ListenerArn: lsArn,
        Priority: 1,
        Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/*'] } }],
        Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: tgArn, Weight: 1 }] } }],
      }),
    );
    const ruleArn = rule.Rules?.[0]?.RuleArn ?? '';
    const rules = await elbv2.send(new DescribeRulesCommand({ ListenerArn: lsArn }));
    assert.deepEqual(rules.Rules?.map((r) => [r.Priority, r.IsDefault]), [
      ['1', false],
      ['default', true],
    ]);
    const tgs = await elbv2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lbArn }));
    assert.deepEqual(tgs.TargetGroups?.map((t) => t.TargetGroupArn), [tgArn]);

    await elbv2.send(new DeleteRuleCommand({ RuleArn: ruleArn }));
    await elbv2.send(new DeleteListenerCommand({ ListenerArn: lsArn }));
    assert.equal(await elbError(elbv2.send(new DescribeListenerAttributesCommand({ ListenerArn: lsArn }))), 'ListenerNotFoundException');
    await elbv2.send(new DeleteLoadBalancerCommand({ LoadBalancerArn: lbArn }));
    await elbv2.send(new DeleteTargetGroupCommand({ TargetGroupArn: tgArn }));
    assert.deepEqual((await elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers, []);
    assert.ok((apis.calls.elbv2.DescribeLoadBalancerAttributes ?? 0) >= 2);
  });
});
