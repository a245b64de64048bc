/**
 * One function's process under the local runtime: the bundle's handler.js served by Cove's
 * function server (as of-watchdog's upstream would be), restarted if it dies.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { Logger } from "../../lib/log"
import { type ManagedChild, startChild, waitUntilReady } from "../local/child"
import { freePort } from "../local/ports"
import type { FunctionSpec } from "../stack"

export type FunctionProcess = {
  readonly spec: FunctionSpec
  /** The port it listens on now (changes after a restart), or undefined while restarting. */
  port(): number | undefined
  stop(): Promise<void>
}

export async function startFunctionProcess(options: {
  spec: FunctionSpec
  serverScript: string
  /** Plain settings every function gets (NATS_URL, PG_SCHEMA, ...); they win over stack.yml. */
  env: Readonly<Record<string, string>>
  /** All secrets the stack has; each function sees only those stack.yml lists for it. */
  secrets: Readonly<Record<string, string>>
  secretsRoot: string
  log: Logger
  /** Where to look for a port to listen on (tests give one that is taken). */
  pickPort?: () => Promise<number>
}): Promise<FunctionProcess> {
  const pickPort = options.pickPort ?? (() => freePort())
  const { spec } = options
  const secretsDir = join(options.secretsRoot, spec.name)
  await mkdir(secretsDir, { recursive: true, mode: 0o700 })
  for (const name of spec.secrets) {
    const value = options.secrets[name]
    if (value === undefined)
      throw new Error(`stack.yml: function ${spec.name} lists secret ${name}, which this stack does not have`)
    await writeFile(join(secretsDir, name), value, { mode: 0o600 })
  }
  let current: ManagedChild | undefined
  let port: number | undefined
  let stopping = false
  let restarts = 0
  const log = options.log.child({ fn: spec.name })

  const launch = async (): Promise<void> => {
    // A port found free can be taken by another process before the child binds it (two stacks
    // starting side by side): the child then exits during start-up, and it starts again on
    // another. Only the child's own answer counts as ready, never another process's on that port.
    for (let attempt = 1; ; attempt++) {
      try {
        await launchOn(await pickPort())
        return
      } catch (err) {
        if (attempt >= 3 || stopping) throw err
        log.warn({ err, attempt }, "function process did not start; trying another port")
      }
    }
  }

  const launchOn = async (p: number): Promise<void> => {
    const child = await startChild({
      name: `function ${spec.name}`,
      command: process.execPath,
      // The AWS SDK warns that its releases after January 2027 need Node 22; ours is pinned.
      args: ["--enable-source-maps", options.serverScript],
      spawn: {
        env: {
          ...spec.environment,
          ...options.env,
          PORT: String(p),
          COVE_HANDLER: join(spec.handlerDir, "handler.js"),
          COVE_SECRETS_DIR: secretsDir,
          MAX_JSON_SIZE: String(spec.maxBodyBytes),
          // The AWS SDK warns that its releases after January 2027 need Node 22; ours is pinned.
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      },
      echo: process.stdout,
      log,
      installHint: "",
    })
    await waitUntilReady(child, () => answersHealth(p, child.process.pid), 15_000)
    current = child
    port = p
    void child.exited.then(({ code, signal }) => {
      port = undefined
      if (stopping) return
      restarts++
      const delay = Math.min(100 * 2 ** restarts, 5_000)
      log.error({ code, signal, restarts, delay }, "function process died; restarting")
      setTimeout(() => {
        launch().catch((err: unknown) => log.error({ err }, "function restart failed"))
      }, delay)
    })
  }
  await launch()
  return {
    spec,
    port: () => port,
    async stop() {
      stopping = true
      await current?.stop("SIGTERM", 10_000)
    },
  }
}

async function answersHealth(port: number, pid: number | undefined): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/_/health`, { signal: AbortSignal.timeout(1000) })
    if (!res.ok) return false
    const body = (await res.json()) as { pid?: unknown }
    return body.pid === pid
  } catch {
    // Not listening yet: the caller polls again.
    return false
  }
}
