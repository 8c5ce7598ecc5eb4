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

export function spawnLogged(binary: string, args: string[], env: NodeJS.ProcessEnv, logPath: string): LoggedChild {
  const logFile = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(logFile, { end: false });
  child.stderr?.pipe(logFile, { end: false });
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
        const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        killer.unref();
        await exit;
        clearTimeout(killer);
      }
      logFile.end();
    },
  };
}
