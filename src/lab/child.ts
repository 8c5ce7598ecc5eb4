/** A component the lab runs as a child process (the real LBC, Argo Rollouts): output to a log file, stop with SIGTERM then SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface LoggedChild {
  readonly child: ChildProcess;
  /** The exit code once it exited (null: killed by a signal); undefined while it runs. */
  exited(): number | null | undefined;
  /** SIGTERM, SIGKILL after `graceMs` (default 10 s); closes the log. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnLoggedOptions {
  /** Keep a pipe to its stdin open while it runs (closed by `stop`): for a child that stops when its parent goes. */
  stdinPipe?: boolean;
  /** Also run when SIGKILL is sent (e.g. to kill a grandchild the child could not stop). */
  onForceKill?: () => void;
}

export function spawnLogged(binary: string, args: string[], env: NodeJS.ProcessEnv, logPath: string, opts: SpawnLoggedOptions = {}): LoggedChild {
  const logFile = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(binary, args, { env, stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(logFile, { end: false });
  child.stderr?.pipe(logFile, { end: false });
  child.stdin?.on('error', () => undefined);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  return {
    child,
    exited: () => exited,
    stop: async (graceMs = 10_000) => {
      if (exited === undefined) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => {
          child.kill('SIGKILL');
          opts.onForceKill?.();
        }, graceMs);
        killer.unref();
        await exit;
        clearTimeout(killer);
      }
      child.stdin?.destroy();
      logFile.end();
    },
  };
}
