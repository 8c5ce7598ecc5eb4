import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.js';

function client(random: () => number): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return new KubeClient(kc, { random });
}

describe('retry jitter', () => {
  it('spreads a backoff over [ms/2, ms) from the injected source', () => {
    assert.equal(client(() => 0).jittered(1000), 500);
    assert.equal(client(() => 0.5).jittered(1000), 750);
    assert.ok(client(() => 0.999).jittered(1000) < 1000);
  });
});
