/**
 * Start-up figures for the foundation: `npm start` (the CLI, from nothing and again on the same
 * data folder) and the cold start of one function bundle under the function server, each
 * against a baseline measured in the same run: an empty `node` process. A script, not a test:
 * `npx tsx bench/startup.ts [runs=5]` after `npm run build`.
 */
import { spawn } from "node:child_process"
import { chmod, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startProgram } from "../test/support/processes"

const root = join(import.meta.dirname, "..")
const runs = Number(process.argv[2] ?? "5")
const PATH = process.env.PATH ?? "/usr/bin:/bin"
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

async function time(fn: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await fn()
  return performance.now() - started
}

async function emptyNode(): Promise<void> {
  await new Promise<void>((resolve) => spawn(process.execPath, ["-e", ""]).once("exit", () => resolve()))
}

async function bundleColdStart(): Promise<void> {
  const server = startProgram(process.execPath, [join(root, "build/function-server.mjs")], {
    PATH,
    PORT: "0",
    LOG_LEVEL: "info",
    COVE_HANDLER: join(root, "build/functions/persist/handler.js"),
    DATABASE_URL: "postgres://unused@127.0.0.1:1/none",
  })
  const port = Number((await server.waitFor(/"port":(\d+)/))[1])
  const res = await fetch(`http://127.0.0.1:${port}/_/health`)
  if (!res.ok) throw new Error("bundle not healthy")
  server.child.kill("SIGTERM")
  await server.exited
}

async function coveStart(dataDir: string): Promise<number> {
  const cove = startProgram(
    join(root, "node_modules/.bin/tsx"),
    ["infra/start.ts"],
    { PATH, LOG_LEVEL: "warn", COVE_DATA_DIR: dataDir, COVE_GATEWAY_PORT: "0", COVE_EDGE_PORT: "0" },
    root,
  )
  const started = performance.now()
  await cove.waitFor(/Cove is up/, 120_000)
  const elapsed = performance.now() - started
  cove.child.kill("SIGINT")
  await cove.exited
  return elapsed
}

const baseline: number[] = []
const bundle: number[] = []
for (let i = 0; i < runs; i++) {
  baseline.push(await time(emptyNode))
  bundle.push(await time(bundleColdStart))
}
const dir = await mkdtemp(join(tmpdir(), "cove-bench-start-"))
await chmod(dir, 0o755)
const fresh = await coveStart(dir)
const warm: number[] = []
for (let i = 0; i < Math.min(runs, 3); i++) warm.push(await coveStart(dir))
await rm(dir, { recursive: true, force: true })

const b = median(baseline)
const lines = [
  `empty node process (baseline): ${b.toFixed(0)} ms (median of ${runs})`,
  `function bundle cold start to healthy: ${median(bundle).toFixed(0)} ms = ${(median(bundle) / b).toFixed(1)}x baseline`,
  `npm start, new data folder (initdb included): ${fresh.toFixed(0)} ms = ${(fresh / b).toFixed(1)}x baseline`,
  `npm start, existing data folder: ${median(warm).toFixed(0)} ms = ${(median(warm) / b).toFixed(1)}x baseline (median of ${warm.length})`,
]
process.stdout.write(`${lines.join("\n")}\n`)
