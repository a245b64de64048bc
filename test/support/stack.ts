/** The whole local stack, in this process, for end-to-end tests (what `npm start` runs). */
import { chmod, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Test } from "tap"
import { type RunningStack, type StackOptions, startStack } from "../../infra/local/stack"
import { loadStack } from "../../infra/stack"
import { repoRoot } from "./bundles"
import { testLog } from "./servers"

/** A folder the postgres user can enter (tests run as root), removed in teardown. */
export async function scratchDir(t: Test, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cove-${name}-`))
  await chmod(dir, 0o755)
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Starts the stack from the built bundles on free ports, embedded servers unless overridden. */
export async function withStack(t: Test, overrides: Partial<StackOptions> = {}): Promise<RunningStack> {
  const dir = await scratchDir(t, "stack")
  const stack = await startStack({
    dataDir: join(dir, "data"),
    buildDir: join(repoRoot, "build"),
    stack: loadStack(join(repoRoot, "stack.yml")),
    gatewayPort: 0,
    edgePort: 0,
    natsPort: 0,
    pgPort: 0,
    s3Port: 0,
    natsUrl: undefined,
    natsServerBin: "nats-server",
    databaseUrl: undefined,
    pgSchema: "cove",
    s3: {
      endpoint: undefined,
      region: "us-east-1",
      bucket: "cove",
      accessKeyId: undefined,
      secretAccessKey: undefined,
    },
    logLevel: "error",
    durable: false,
    log: testLog,
    ...overrides,
  })
  t.teardown(() => stack.stop())
  return stack
}
