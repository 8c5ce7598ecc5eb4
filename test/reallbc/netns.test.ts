import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bridgeEntry, checkNetns, forward, hostForwards, parseBridgeSpec, unshareCommand, type NetnsBridgeSpec } from '../../src/lab/reallbc/netns.js';
import { waitFor } from '../helpers/wait.js';

/** Sends `line` and resolves with everything the peer writes until it closes (or '' when the connection fails). */
function exchange(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(line));
    s.on('data', (d: string) => (got += d));
    s.on('error', () => resolve(''));
    s.on('close', () => resolve(got));
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Answers `<prefix><what it read>` and closes. */
function replier(prefix: string): Server {
  return createServer((s) => s.once('data', (d) => s.end(`${prefix}${d.toString()}`)));
}

function namespacesAvailable(): string | false {
  try {
    checkNetns();
    return false;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('the real controller\'s network namespace bridge', () => {
  it('forward pipes a loopback port to a Unix socket and back, both ways', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-fw-'));
    const target = replier('echo:');
    const targetPort = await listen(target);
    const toTarget = await forward({ path: join(dir, 't.sock') }, { port: targetPort });
    const probe = createServer();
    const front = await listen(probe);
    await new Promise<void>((r) => probe.close(() => r()));
    const fromFront = await forward({ port: front }, { path: join(dir, 't.sock') });
    try {
      assert.equal(await exchange(front, 'hi'), 'echo:hi');
    } finally {
      await fromFront.close();
      await toTarget.close();
      await new Promise<void>((r) => target.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a malformed bridge spec is named as a lab bug', () => {
    assert.throws(() => parseBridgeSpec('{"dir":"/d","outbound":[0],"inbound":[],"command":"x","args":[]}'), /malformed spec .* \(a lab bug\)/);
    assert.throws(() => parseBridgeSpec(undefined), /malformed spec/);
    const ok: NetnsBridgeSpec = { dir: '/d', outbound: [1, 2], inbound: [9443], command: '/bin/x', args: ['--a=b'] };
    assert.deepEqual(parseBridgeSpec(JSON.stringify(ok)), ok);
  });

  it('unshare makes user and network namespaces and brings their loopback up before the bridge', () => {
    const c = unshareCommand('/usr/bin/node', ['--import', 'tsx'], '/b.ts', { dir: '/d', outbound: [1], inbound: [2], command: '/c', args: [] });
    assert.equal(c.command, 'unshare');
    assert.deepEqual(c.args.slice(0, 4), ['--user', '--map-root-user', '--net', '--']);
    assert.match(c.args[6] ?? '', /ip link set lo up && exec "\$@"/);
    assert.deepEqual(c.args.slice(8, 12), ['/usr/bin/node', '--import', 'tsx', '/b.ts']);
  });

  it(
    'a server listening on every interface inside is reached only through the bridge, and reaches the lab only through it',
    { skip: namespacesAvailable() || undefined },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'alb-ns-'));
      // The lab side: a server the namespace dials (like the API server), and the host port of the inside server.
      const lab = replier('lab:');
      const labPort = await listen(lab);
      const probe = createServer();
      const hostPort = await listen(probe);
      await new Promise<void>((r) => probe.close(() => r()));
      // Inside: listens on port 9443 of every interface (as the controller's webhook does); each connection is
      // answered with what the lab's server answers it through the outbound bridge.
      const inside = `const net = require('node:net');
net.createServer((s) => s.once('data', (d) => {
  const up = net.connect({ host: '127.0.0.1', port: ${labPort} }, () => up.write('from-inside:' + d));
  let got = '';
  up.on('data', (x) => (got += x)).on('close', () => s.end('inside:' + got)).on('error', () => s.end('inside:no-lab'));
})).listen(9443);`;
      const spec: NetnsBridgeSpec = { dir, outbound: [labPort], inbound: [9443], command: process.execPath, args: ['-e', inside] };
      const close = await hostForwards(spec, [{ hostPort, port: 9443 }]);
      const entry = bridgeEntry();
      const cmd = unshareCommand(process.execPath, entry.nodeArgs, entry.script, spec);
      const child = spawn(cmd.command, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        let answer = '';
        await waitFor(async () => (answer = await exchange(hostPort, 'ping')) !== '', { timeoutMs: 20_000, what: 'the inside server through the bridge', describe: () => `bridge stderr: ${stderr}` });
        assert.equal(answer, 'inside:lab:from-inside:ping');
        // The host's own 9443 (if anything listens there) is not the inside server.
        assert.notEqual(await exchange(9443, 'ping'), answer);
        // The bridge's stdin closing (the lab gone) stops the inside server and the bridge.
        child.stdin.end();
        assert.equal(await exited, 0);
        assert.equal(existsSync(dir), false, 'the bridge removed its socket directory');
      } finally {
        child.kill('SIGKILL');
        await close();
        await new Promise<void>((r) => lab.close(() => r()));
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
