import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IpAllocator } from '../../src/lab/kubelet/index.js';
import { LabNetwork, connectToPod } from '../../src/lab/network.js';

describe('lab network', () => {
  it('routes a pod address: blackhole when no pod owns it, refused without a listener, else the 127.0.0.1 listener', () => {
    const net = new LabNetwork();
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'blackhole' });
    net.attach('127.10.0.2', 'uid-a');
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'refused' });
    assert.equal(net.expose('127.10.0.2', 80, 'uid-a', 40001), undefined);
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'listener', host: '127.0.0.1', port: 40001 });
    assert.deepEqual(net.route('127.10.0.2', 81), { kind: 'refused' });
    const refused = connectToPod(net, '127.10.0.2', 81);
    assert.equal(refused.kind, 'refused');
    assert.equal(refused.kind === 'refused' && refused.error.code, 'ECONNREFUSED');
    net.unexpose('127.10.0.2', 80, 40001);
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'refused' });
    net.detach('127.10.0.2', 'uid-a');
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'blackhole' });
  });

  it('fails like bind(2): one port once per pod (EADDRINUSE), and only on an address the pod owns (EADDRNOTAVAIL)', () => {
    const net = new LabNetwork();
    net.attach('127.10.0.2', 'uid-a');
    assert.equal(net.expose('127.10.0.2', 80, 'uid-a', 40001), undefined);
    assert.equal(net.expose('127.10.0.2', 80, 'uid-a', 40002)?.code, 'EADDRINUSE');
    assert.equal(net.expose('127.10.0.3', 80, 'uid-a', 40003)?.code, 'EADDRNOTAVAIL');
    assert.throws(() => net.attach('127.10.0.2', 'uid-b'), /127\.10\.0\.2 is still assigned to pod uid uid-a/);
  });

  it('a reused IP never leads to the old pod: its late close or bind does not touch the new pod', () => {
    const net = new LabNetwork();
    net.attach('127.10.0.2', 'uid-old');
    net.expose('127.10.0.2', 80, 'uid-old', 40001);
    net.detach('127.10.0.2', 'uid-old');
    net.attach('127.10.0.2', 'uid-new');
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'refused' }, 'the old listener is not inherited');
    assert.equal(net.expose('127.10.0.2', 8080, 'uid-old', 40009)?.code, 'EADDRNOTAVAIL', 'the old pod cannot bind the new one');
    net.expose('127.10.0.2', 80, 'uid-new', 40002);
    net.unexpose('127.10.0.2', 80, 40001); // the old server finishes closing
    net.detach('127.10.0.2', 'uid-old'); // and the old pod's teardown runs late
    assert.deepEqual(net.route('127.10.0.2', 80), { kind: 'listener', host: '127.0.0.1', port: 40002 });
  });
});

describe('pod IP allocator', () => {
  it('round robin by default: a released address comes back only once the range has gone by', () => {
    const ips = new IpAllocator({ start: '127.20.0.2', end: '127.20.0.4' });
    assert.equal(ips.allocate(), '127.20.0.2');
    ips.release('127.20.0.2');
    assert.equal(ips.allocate(), '127.20.0.3');
    assert.equal(ips.allocate(), '127.20.0.4');
    assert.equal(ips.allocate(), '127.20.0.2');
    assert.throws(() => ips.allocate(), /no free pod IP in 127\.20\.0\.2-127\.20\.0\.4: 3 in use; delete pods or widen podIPRange/);
  });

  it('with a cooldown, reuses the oldest released address once it has been free that long (as the VPC CNI)', () => {
    let now = 0;
    const ips = new IpAllocator({ start: '127.20.0.2', end: '127.20.255.254' }, { cooldownMs: 30_000, now: () => now });
    const a = ips.allocate();
    const b = ips.allocate();
    ips.release(a);
    now = 10_000;
    ips.release(b);
    assert.equal(ips.allocate(), '127.20.0.4', 'in cooldown: a fresh address');
    now = 30_000;
    assert.equal(ips.allocate(), a, 'the oldest released, after its cooldown');
    assert.equal(ips.allocate(), '127.20.0.5', 'b still cools down');
    now = 40_000;
    assert.equal(ips.allocate(), b);
  });

  it('never hands out an address outside 127.0.0.0/8', () => {
    assert.throws(() => new IpAllocator({ start: '10.0.0.2', end: '10.0.0.9' }), /must lie in 127\.0\.0\.0\/8/);
  });
});
