/**
 * The process that runs inside the controller's network namespace (see netns.ts): it opens the namespace's
 * side of the bridge, then runs the controller as its child, passing SIGTERM/SIGINT on and exiting with its
 * code. When its stdin closes (the lab went away without stopping it), it stops the controller too.
 *
 * Bundled as dist/lab-netns-bridge.js; run from source through tsx.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { controllerPidFile, namespaceForwards, parseBridgeSpec } from './netns.js';

async function main(): Promise<number> {
  const spec = parseBridgeSpec(process.argv[2]);
  const close = await namespaceForwards(spec);
  const child = spawn(spec.command, spec.args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (child.pid) writeFileSync(controllerPidFile(spec.dir), `${child.pid}\n`);
  const stop = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on('SIGTERM', stop('SIGTERM'));
  process.on('SIGINT', stop('SIGTERM'));
  process.stdin.on('end', stop('SIGTERM'));
  process.stdin.on('error', stop('SIGTERM'));
  process.stdin.resume();
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`netns bridge: cannot run ${spec.command}: ${err.message}\n`);
      resolve(127);
    });
    child.once('exit', (c, signal) => resolve(c ?? (signal === 'SIGTERM' ? 0 : 1)));
  });
  await close();
  // The lab removes it too when it stops the controller; this covers a lab that went away without stopping it.
  rmSync(spec.dir, { recursive: true, force: true });
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`netns bridge: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
