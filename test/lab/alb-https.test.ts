/**
 * The lab ALB's HTTPS listeners: each on its own loopback TLS server with a lab-CA certificate for the names its
 * rules match (SNI), the CreateListener validation AWS applies (a certificate is required), and an HTTP listener
 * whose default action redirects answers 301 to the HTTPS port.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { LabNetwork } from '../../src/lab/network.js';
import { waitFor } from '../helpers/wait.js';
import { albWithTargetGroup, fastClock, httpGet, podServer, type PodServer } from './alb-helpers.js';

function httpsGet(url: string, o: { servername?: string; host?: string; ca?: string }): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, ...(o.ca ? { ca: o.ca } : {}), ...(o.servername ? { servername: o.servername } : {}), headers: o.host ? { host: o.host } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: e.code ?? e.message }));
    req.end();
  });
}

describe('lab ALB HTTPS listeners', () => {
  const network = new LabNetwork();
  let alb: AlbCloud;
  let pod: PodServer;
  before(async () => {
    alb = new AlbCloud({ clock: fastClock(), region: 'us-east-1', network });
    pod = await podServer(network, '127.0.200.41');
  });
  after(async () => {
    await pod.close();
    await alb.stop();
  });

  test('HTTPS needs a certificate; with one, TLS with SNI of a rule host is served by a lab-CA certificate and forwards by the rules; HTTP redirects with 301', async () => {
    const account = awsAccount(alb);
    const { lbArn, tgArn, listenerArn: httpArn } = await albWithTargetGroup(alb, { name: 'k8s-default-tls-0123456789', forward: false });
    await assert.rejects(
      account.elbv2('CreateListener', { LoadBalancerArn: lbArn, Port: 443, Protocol: 'HTTPS', DefaultActions: [{ Type: 'forward', TargetGroupArn: tgArn }] }),
      /A certificate must be specified for HTTPS listeners/,
    );
    const created = await account.elbv2('CreateListener', {
      LoadBalancerArn: lbArn,
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/lab' }],
      DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain' } }],
    });
    const httpsArn = created.Listeners![0]!.ListenerArn!;
    assert.equal(created.Listeners![0]!.Certificates?.[0]?.CertificateArn, 'arn:aws:acm:us-east-1:123456789012:certificate/lab');
    await account.elbv2('CreateRule', {
      ListenerArn: httpsArn,
      Priority: 1,
      Conditions: [{ Field: 'host-header', HostHeaderConfig: { Values: ['app.example.com'] } }],
      Actions: [{ Type: 'forward', TargetGroupArn: tgArn }],
    });
    await account.elbv2('ModifyListener', { ListenerArn: httpArn, DefaultActions: [{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } }] });
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    const summary = alb.loadBalancerSummaries().find((s) => s.arn === lbArn)!;
    const https = summary.listeners.find((l) => l.protocol === 'HTTPS')!;
    assert.match(https.address, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = alb.certificates.caPem();

    await waitFor(async () => (await httpsGet(`${https.address}/x`, { servername: 'app.example.com', host: 'app.example.com', ca })).status === 200 || undefined, {
      timeoutMs: 10_000,
      what: 'the target healthy and served through TLS',
    });
    const ok = await httpsGet(`${https.address}/x`, { servername: 'app.example.com', host: 'app.example.com', ca });
    assert.match(ok.body, /ok from 127\.0\.200\.41 \/x/);
    // Another host: the default action of the HTTPS listener (its rules match by host).
    assert.equal((await httpsGet(`${https.address}/x`, { servername: 'app.example.com', host: 'other.example.com', ca })).status, 404);
    // A name the certificate does not cover, or the CA not trusted: the handshake fails as a client checks it.
    assert.equal((await httpsGet(`${https.address}/x`, { servername: 'nope.example.org', host: 'app.example.com', ca })).error, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.equal((await httpsGet(`${https.address}/x`, { servername: 'app.example.com', host: 'app.example.com' })).error, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');

    const redirect = await httpGet(`${alb.dataPlaneUrl(lbArn)}/a/b`);
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, 'https://127.0.0.1:443/a/b'.replace('127.0.0.1', String(new URL(alb.dataPlaneUrl(lbArn)).hostname)));

    await account.elbv2('DeleteListener', { ListenerArn: httpsArn });
    assert.equal((await httpsGet(`${https.address}/x`, { servername: 'app.example.com', ca })).status, 0, 'a deleted listener no longer serves');
  });
});
