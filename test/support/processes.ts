/** Helpers for tests that run Cove's programs as separate processes. */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { repoRoot } from "./bundles"

const run = promisify(execFile)

export type Program = {
  readonly child: ChildProcess
  output(): string
  /** Resolves with the first match of `pattern` in the output, or rejects at the deadline or exit. */
  waitFor(pattern: RegExp, deadlineMs?: number): Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
}

export function startProgram(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Program {
  const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    out += chunk.toString("utf8")
    for (const l of listeners) l()
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let hasExited = false
  void exited.then(() => {
    hasExited = true
    for (const l of listeners) l()
  })
  return {
    child,
    output: () => out,
    exited,
    waitFor(pattern, deadlineMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern)
          if (m !== null) {
            done()
            resolve(m)
          } else if (hasExited) {
            done()
            reject(new Error(`exited before printing ${pattern}:\n${out.slice(-3000)}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no ${pattern} within ${deadlineMs} ms:\n${out.slice(-3000)}`))
        }, deadlineMs)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      })
    },
  }
}

/** A process as the kernel knows it: pid plus start time, so a reused pid is not mistaken for it. */
export type ProcessIdentity = { readonly pid: number; readonly startTime: string | undefined }

function startTimeOf(pid: number): string | undefined {
  try {
    // Field 22 of /proc/<pid>/stat, counted after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    // Gone already.
    return undefined
  }
}

/** Every process below `pid` (children, grandchildren, ...), with their start times. */
export async function descendants(pid: number): Promise<ProcessIdentity[]> {
  return (await descendantPids(pid)).map((p) => ({ pid: p, startTime: startTimeOf(p) }))
}

/** True while that very process (not a later one with its pid) exists and is not a zombie. */
export function stillRunning(p: ProcessIdentity): boolean {
  if (p.startTime === undefined || startTimeOf(p.pid) !== p.startTime) return false
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p.pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

async function descendantPids(pid: number): Promise<number[]> {
  const { stdout } = await run("ps", ["-e", "-o", "pid=,ppid="])
  const children = new Map<number, number[]>()
  for (const line of stdout.trim().split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number)
    if (p === undefined || pp === undefined) continue
    children.set(pp, [...(children.get(pp) ?? []), p])
  }
  const out: number[] = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    // ESRCH: no such process.
    return false
  }
}

/**
 * An edge from the built bundle in its own process, on a stack's NATS and functions, with
 * `env` added (credentials, presence timings). `kill` ends it as a lost machine would: no drain,
 * no deletes, nothing more on the wire. Killed in `t`'s teardown in any case.
 */
export async function startEdgeProcess(
  t: { teardown(fn: () => void): void },
  stack: { natsUrl: string; gatewayUrl: string },
  env: Record<string, string> = {},
): Promise<{ url: string; kill(): Promise<void> }> {
  const edge = startProgram(
    process.execPath,
    ["--enable-source-maps", join(repoRoot, "build", "gateway.mjs")],
    {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      LOG_LEVEL: "info",
      NATS_URL: stack.natsUrl,
      COVE_EDGE_PORT: "0",
      COVE_FUNCTIONS_URL: stack.gatewayUrl,
      COVE_JWKS_URL: `${stack.gatewayUrl}/function/auth/jwks`,
      ...env,
    },
  )
  t.teardown(() => {
    edge.child.kill("SIGKILL")
  })
  const [, port] = await edge.waitFor(/"port":(\d+)[^\n]*"edge listening"/, 30_000)
  return {
    url: `ws://127.0.0.1:${port}/v1/ws`,
    kill: async () => {
      edge.child.kill("SIGKILL")
      await edge.exited
    },
  }
}
