import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteSecurityGroupCommand,
  DeleteTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  EC2ServiceException,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { LabNetwork } from '../../src/lab/network.js';
import { instanceIdForNode, startAwsApis, type AwsApis, type Ec2NodeView } from '../../src/lab/aws/index.js';
import { fastClock } from './alb-helpers.js';

const credentials = { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' };

async function ec2Error(p: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EC2ServiceException, `expected an EC2 service error, got ${String(err)}`);
    return { name: err.name, message: err.message, status: err.$metadata.httpStatusCode };
  }
  assert.fail('expected the call to fail');
}

describe('EC2 API (what the AWS Load Balancer Controller calls) with the real SDK', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  let apis: AwsApis;
  let ec2: EC2Client;
  const nodes: Ec2NodeView[] = [
    { name: 'lab-node-1', zoneIndex: 0, nodeIp: '127.0.0.1', podIps: ['127.9.0.2', '127.9.0.3'] },
    { name: 'lab-node-2', zoneIndex: 1, nodeIp: '127.0.0.2', podIps: ['127.9.0.4'] },
  ];

  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network: new LabNetwork() });
    apis = await startAwsApis({ alb, clock, clusterName: 'demo', network: () => nodes });
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: apis.ec2Url, credentials, retryStrategy: new ConfiguredRetryStrategy(2, (n) => 5 * n) });
  });
  after(async () => {
    ec2.destroy();
    await apis.stop();
    await alb.stop();
  });

  test('subnet discovery: the role/elb tag filter finds one subnet per zone in the VPC, with cluster tags', async () => {
    const out = await ec2.send(
      new DescribeSubnetsCommand({
        Filters: [
          { Name: 'vpc-id', Values: [alb.vpcId] },
          { Name: 'tag:kubernetes.io/role/elb', Values: ['', '1'] },
        ],
      }),
    );
    const subnets = out.Subnets ?? [];
    assert.deepEqual(
      subnets.map((s) => [s.SubnetId, s.AvailabilityZone, s.VpcId, s.State]),
      [
        ['subnet-0lab00000000000', 'us-east-1a', alb.vpcId, 'available'],
        ['subnet-0lab00000000001', 'us-east-1b', alb.vpcId, 'available'],
      ],
    );
    assert.ok((subnets[0]?.AvailableIpAddressCount ?? 0) > 8);
    assert.deepEqual(
      Object.fromEntries((subnets[0]?.Tags ?? []).map((t) => [t.Key, t.Value])),
      { Name: 'demo-public-us-east-1a', 'kubernetes.io/role/elb': '1', 'kubernetes.io/cluster/demo': 'shared' },
    );
    // the internal-elb role is not tagged; another VPC has nothing
    assert.deepEqual((await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:kubernetes.io/role/internal-elb', Values: ['', '1'] }] }))).Subnets, []);
    assert.deepEqual((await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: ['vpc-other'] }] }))).Subnets, []);
    const byId = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0lab00000000001'] }));
    assert.equal(byId.Subnets?.[0]?.CidrBlock, '127.128.0.0/9');
    const missing = await ec2Error(ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0123'] })));
    assert.equal(missing.name, 'InvalidSubnetID.NotFound');
    assert.equal(missing.status, 400);
    const badFilter = await ec2Error(ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'no-such-filter', Values: ['x'] }] })));
    assert.equal(badFilter.name, 'InvalidParameterValue');
    assert.match(badFilter.message, /no-such-filter/);
  });

  test('VPC, availability zones and the main route table with an internet gateway', async () => {
    const vpcs = await ec2.send(new DescribeVpcsCommand({ VpcIds: [alb.vpcId] }));
    assert.equal(vpcs.Vpcs?.[0]?.VpcId, alb.vpcId);
    assert.deepEqual(vpcs.Vpcs?.[0]?.CidrBlockAssociationSet?.map((c) => [c.CidrBlock, c.CidrBlockState?.State]), [
      ['127.0.0.0/8', 'associated'],
      ['198.18.0.0/15', 'associated'],
    ]);
    assert.equal((await ec2Error(ec2.send(new DescribeVpcsCommand({ VpcIds: ['vpc-nope'] })))).name, 'InvalidVpcID.NotFound');
    const zones = await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['us-east-1a', 'us-east-1b'] }));
    assert.deepEqual(
      zones.AvailabilityZones?.map((z) => [z.ZoneName, z.ZoneId, z.ZoneType, z.State]),
      [
        ['us-east-1a', 'use1-az1', 'availability-zone', 'available'],
        ['us-east-1b', 'use1-az2', 'availability-zone', 'available'],
      ],
    );
    const rts = await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [alb.vpcId] }] }));
    const rt = rts.RouteTables?.[0];
    assert.equal(rt?.Associations?.[0]?.Main, true);
    assert.ok(rt?.Routes?.some((r) => r.DestinationCidrBlock === '0.0.0.0/0' && r.GatewayId?.startsWith('igw-')));
  });

  test('pod IPs resolve to their node ENI: by instance (providerID) and by private-IP filter', async () => {
    const id = instanceIdForNode('lab-node-1');
    const inst = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const i = inst.Reservations?.[0]?.Instances?.[0];
    assert.equal(i?.InstanceId, id);
    assert.equal(i?.Placement?.AvailabilityZone, 'us-east-1a');
    const eni = i?.NetworkInterfaces?.[0];
    assert.deepEqual(eni?.PrivateIpAddresses?.map((a) => [a.PrivateIpAddress, a.Primary]), [
      ['127.0.0.1', true],
      ['127.9.0.2', false],
      ['127.9.0.3', false],
    ]);
    assert.deepEqual(eni?.Groups?.map((g) => g.GroupId), ['sg-0lab00000000000002']);
    assert.equal((await ec2Error(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).name, 'InvalidInstanceID.NotFound');

    const enis = await ec2.send(
      new DescribeNetworkInterfacesCommand({
        Filters: [
          { Name: 'vpc-id', Values: [alb.vpcId] },
          { Name: 'addresses.private-ip-address', Values: ['127.9.0.4', '127.9.0.3', '127.200.0.1'] },
        ],
      }),
    );
    assert.deepEqual(enis.NetworkInterfaces?.map((e) => [e.Attachment?.InstanceId, e.AvailabilityZone, e.SubnetId]), [
      [instanceIdForNode('lab-node-1'), 'us-east-1a', 'subnet-0lab00000000000'],
      [instanceIdForNode('lab-node-2'), 'us-east-1b', 'subnet-0lab00000000001'],
    ]);
    // the node security group is the one tagged for the cluster (how the controller picks among an ENI's groups)
    const sg = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-0lab00000000000002'] }));
    assert.equal(sg.SecurityGroups?.[0]?.Tags?.find((t) => t.Key === 'kubernetes.io/cluster/demo')?.Value, 'owned');
  });

  test('security group lifecycle: create with tags, find by tag, authorize/revoke rules, duplicates, dependencies, delete', async () => {
    const created = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: 'k8s-default-web-0123456789',
        Description: '[k8s] Managed SecurityGroup for LoadBalancer',
        VpcId: alb.vpcId,
        TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'elbv2.k8s.aws/cluster', Value: 'demo' }, { Key: 'ingress.k8s.aws/resource', Value: 'ManagedLBSecurityGroup' }] }],
      }),
    );
    const groupId = created.GroupId ?? '';
    assert.match(groupId, /^sg-[0-9a-f]{17}$/);
    assert.deepEqual(created.Tags?.map((t) => t.Key), ['elbv2.k8s.aws/cluster', 'ingress.k8s.aws/resource']);
    const dup = await ec2Error(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'k8s-default-web-0123456789', Description: 'x', VpcId: alb.vpcId })));
    assert.equal(dup.name, 'InvalidGroup.Duplicate');

    const found = await ec2.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [alb.vpcId] }, { Name: 'tag:elbv2.k8s.aws/cluster', Values: ['demo'] }] }),
    );
    assert.deepEqual(found.SecurityGroups?.map((g) => [g.GroupId, g.GroupName, g.Description]), [[groupId, 'k8s-default-web-0123456789', '[k8s] Managed SecurityGroup for LoadBalancer']]);
    assert.deepEqual(found.SecurityGroups?.[0]?.IpPermissionsEgress?.map((p) => [p.IpProtocol, p.IpRanges?.[0]?.CidrIp]), [['-1', '0.0.0.0/0']]);

    const http = { IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{ CidrIp: '0.0.0.0/0', Description: '' }] };
    const auth = await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [http] }));
    assert.equal(auth.Return, true);
    assert.equal(auth.SecurityGroupRules?.[0]?.CidrIpv4, '0.0.0.0/0');
    assert.equal((await ec2Error(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [http] })))).name, 'InvalidPermission.Duplicate');

    // the backend rule on the node group: traffic from the load balancer's group to the pods' port
    const backend = { IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, UserIdGroupPairs: [{ GroupId: groupId, Description: 'elbv2.k8s.aws/targetGroupBinding=shared' }] };
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: 'sg-0lab00000000000002', IpPermissions: [backend] }));
    const node = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-0lab00000000000002'] }));
    const rule = node.SecurityGroups?.[0]?.IpPermissions?.find((p) => p.FromPort === 8080);
    assert.deepEqual(rule?.UserIdGroupPairs?.map((g) => [g.GroupId, g.Description]), [[groupId, 'elbv2.k8s.aws/targetGroupBinding=shared']]);

    const inUse = await ec2Error(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })));
    assert.equal(inUse.name, 'DependencyViolation');
    await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: 'sg-0lab00000000000002', IpPermissions: [backend] }));
    assert.equal((await ec2Error(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: 'sg-0lab00000000000002', IpPermissions: [backend] })))).name, 'InvalidPermission.NotFound');

    await ec2.send(new CreateTagsCommand({ Resources: [groupId], Tags: [{ Key: 'ingress.k8s.aws/stack', Value: 'default/web' }] }));
    await ec2.send(new DeleteTagsCommand({ Resources: [groupId], Tags: [{ Key: 'ingress.k8s.aws/resource' }] }));
    const tagged = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }));
    assert.deepEqual(Object.fromEntries((tagged.SecurityGroups?.[0]?.Tags ?? []).map((t) => [t.Key, t.Value])), { 'elbv2.k8s.aws/cluster': 'demo', 'ingress.k8s.aws/stack': 'default/web' });

    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
    assert.equal((await ec2Error(ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] })))).name, 'InvalidGroup.NotFound');
    assert.equal((await ec2Error(ec2.send(new DeleteSecurityGroupCommand({ GroupId: 'sg-0lab00000000000001' })))).name, 'CannotDelete');
    assert.ok((apis.calls.ec2.CreateSecurityGroup ?? 0) >= 2);
  });

  test('EC2 faults: throttling is RequestLimitExceeded, and an unknown action is InvalidAction', async () => {
    apis.setFaults({ ec2: { throttleNext: 1 } });
    const throttled = await ec2Error(new EC2Client({ region: 'us-east-1', endpoint: apis.ec2Url, credentials, maxAttempts: 1 }).send(new DescribeVpcsCommand({})));
    assert.equal(throttled.name, 'RequestLimitExceeded');
    apis.setFaults({});
    const res = await fetch(apis.ec2Url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=RunInstances&Version=2016-11-15' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /<Code>InvalidAction<\/Code>/);
  });
});

describe('the lab node as EC2 sees it', () => {
  test("the node's providerID names an instance the EC2 API answers, in the VPC the ALB model reports", async () => {
    const { startLab } = await import('../../src/lab/index.js');
    const lab = await startLab({ clusterName: 'demo' });
    const ec2 = new EC2Client({ region: lab.region, endpoint: lab.aws.ec2Url, credentials, maxAttempts: 1 });
    try {
      const node = lab.store.get('Node', '', 'lab-node-1');
      const providerID = String((node?.spec as { providerID?: string } | undefined)?.providerID);
      const m = /^aws:\/\/\/([a-z0-9-]+)\/(i-[0-9a-f]+)$/.exec(providerID);
      assert.ok(m, `providerID ${providerID} is not aws:///<zone>/<instance-id>`);
      const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [m[2] as string] }));
      const inst = out.Reservations?.[0]?.Instances?.[0];
      assert.equal(inst?.Placement?.AvailabilityZone, m[1]);
      assert.equal(inst?.VpcId, lab.alb.vpcId);
      assert.equal(inst?.NetworkInterfaces?.[0]?.PrivateIpAddresses?.[0]?.PrivateIpAddress, '127.0.0.1');
    } finally {
      ec2.destroy();
      await lab.stop();
    }
  });
});
