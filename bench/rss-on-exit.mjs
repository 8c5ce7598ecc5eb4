// Preloaded into a CLI child by bench/suites/plan-cli.ts: its peak RSS (MB) and CPU time (user + system, s) on fd 3 when it exits.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  const u = process.resourceUsage();
  writeSync(3, `${Math.round((u.maxRSS / 1024) * 10) / 10} ${(u.userCPUTime + u.systemCPUTime) / 1e6}\n`);
});
