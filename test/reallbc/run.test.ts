import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lbcArgs } from '../../src/lab/reallbc/run.js';

test('the real controller runs out of cluster against the lab: endpoints, no leader election, add-ons off, loopback metrics and probes', () => {
  const args = lbcArgs(
    { kubeconfigPath: '/s/kubeconfig', clusterName: 'lab', region: 'us-east-1', vpcId: 'vpc-1', ec2Url: 'http://127.0.0.1:1', elbv2Url: 'http://127.0.0.1:2', timeScale: 20 },
    '/s/certs',
    { webhook: 9443, metrics: 3, health: 4 },
  );
  assert.deepEqual(args, [
    '--kubeconfig=/s/kubeconfig',
    '--cluster-name=lab',
    '--aws-region=us-east-1',
    '--aws-vpc-id=vpc-1',
    '--enable-leader-election=false',
    '--enable-waf=false',
    '--enable-wafv2=false',
    '--enable-shield=false',
    '--aws-api-endpoints=EC2=http://127.0.0.1:1,Elastic Load Balancing v2=http://127.0.0.1:2',
    '--webhook-cert-dir=/s/certs',
    '--webhook-cert-file=tls.crt',
    '--webhook-key-file=tls.key',
    '--webhook-bind-port=9443',
    '--metrics-bind-addr=127.0.0.1:3',
    '--health-probe-bind-addr=127.0.0.1:4',
    '--feature-gates=ALBGatewayAPI=false,NLBGatewayAPI=false,GlobalAcceleratorController=false',
    // 15 s of the controller's requeue is 15 simulated seconds at 20×
    '--targetgroupbinding-requeue-duration=750ms',
  ]);
});
