// src/lab/reallbc/netns-bridge.ts
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";

// src/lab/reallbc/netns.ts
import { createConnection, createServer } from "node:net";
import { dirname, join } from "node:path";
var outboundSocket = (dir, port) => join(dir, `o${port}.sock`);
var inboundSocket = (dir, port) => join(dir, `i${port}.sock`);
var controllerPidFile = (dir) => join(dir, "controller.pid");
function dial(to) {
  return "port" in to ? createConnection({ host: "127.0.0.1", port: to.port }) : createConnection({ path: to.path });
}
function forward(from, to) {
  const open = /* @__PURE__ */ new Set();
  const server = createServer((inbound) => {
    const outbound = dial(to);
    open.add(inbound);
    open.add(outbound);
    const done = () => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on("error", done).on("close", done);
    outbound.on("error", done).on("close", done);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const ready = () => {
      server.off("error", reject);
      resolve({
        server,
        close: () => new Promise((r) => {
          for (const s of open) s.destroy();
          server.close(() => r());
        })
      });
    };
    if ("port" in from) server.listen(from.port, "127.0.0.1", ready);
    else server.listen(from.path, ready);
  });
}
async function namespaceForwards(spec) {
  const closers = [];
  for (const port of spec.outbound) closers.push((await forward({ port }, { path: outboundSocket(spec.dir, port) })).close);
  for (const port of spec.inbound) closers.push((await forward({ path: inboundSocket(spec.dir, port) }, { port })).close);
  return async () => {
    await Promise.all(closers.map((c) => c()));
  };
}
function parseBridgeSpec(text) {
  const v = JSON.parse(text ?? "null");
  const ports = (x) => Array.isArray(x) && x.every((p) => Number.isInteger(p) && p > 0 && p < 65536);
  if (!v || typeof v.dir !== "string" || !ports(v.outbound) || !ports(v.inbound) || typeof v.command !== "string" || !Array.isArray(v.args) || !v.args.every((a) => typeof a === "string")) {
    throw new Error(`netns bridge: malformed spec ${String(text).slice(0, 200)} (a lab bug)`);
  }
  return v;
}

// src/lab/reallbc/netns-bridge.ts
async function main() {
  const spec = parseBridgeSpec(process.argv[2]);
  const close = await namespaceForwards(spec);
  const child = spawn(spec.command, spec.args, { stdio: ["ignore", "inherit", "inherit"] });
  if (child.pid) writeFileSync(controllerPidFile(spec.dir), `${child.pid}
`);
  const stop = (signal) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on("SIGTERM", stop("SIGTERM"));
  process.on("SIGINT", stop("SIGTERM"));
  process.stdin.on("end", stop("SIGTERM"));
  process.stdin.on("error", stop("SIGTERM"));
  process.stdin.resume();
  const code = await new Promise((resolve) => {
    child.once("error", (err) => {
      process.stderr.write(`netns bridge: cannot run ${spec.command}: ${err.message}
`);
      resolve(127);
    });
    child.once("exit", (c, signal) => resolve(c ?? (signal === "SIGTERM" ? 0 : 1)));
  });
  await close();
  rmSync(spec.dir, { recursive: true, force: true });
  return code;
}
main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`netns bridge: ${err instanceof Error ? err.message : String(err)}
`);
    process.exit(1);
  }
);
