import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process"
import { access, constants } from "node:fs/promises"
import { join } from "node:path"
import type { Logger } from "../../lib/log"

export class MissingBinaryError extends Error {
  constructor(
    readonly binary: string,
    readonly hint: string,
  ) {
    super(`${binary} was not found on PATH. ${hint}`)
    this.name = "MissingBinaryError"
  }
}

/** Finds `binary` the way a shell would (a path containing "/" is taken as it is). */
export async function findOnPath(binary: string, searchPath: string): Promise<string | undefined> {
  const candidates = binary.includes("/")
    ? [binary]
    : searchPath
        .split(":")
        .filter(Boolean)
        .map((d) => join(d, binary))
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // Not in this folder: try the next one.
    }
  }
  return undefined
}

/** Processes still running when this process exits are killed, so nothing is left behind. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
function killOnExit(child: ChildProcess): void {
  running.add(child)
  child.once("exit", () => running.delete(child))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const c of running) c.kill("SIGKILL")
  })
}

/** A server process we started and will stop. */
export type ManagedChild = {
  readonly name: string
  readonly process: ChildProcess
  /** Resolves with the exit code (or signal) when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Last lines the process printed, to explain a failed start. */
  recentOutput(): string
  /** Sends `signal`, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>
}

export async function startChild(options: {
  name: string
  command: string
  args: readonly string[]
  spawn?: SpawnOptions
  log: Logger
  /** Shown when the binary is missing: how to install it. */
  installHint: string
  /** Copy the child's output lines here as they come (its own JSON log lines, say). */
  echo?: NodeJS.WritableStream
}): Promise<ManagedChild> {
  // Own process group: a Ctrl-C in the terminal reaches only us, and we stop children in order.
  const child = spawn(options.command, options.args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    ...options.spawn,
  })
  const tail: string[] = []
  const capture = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue
      tail.push(line)
      if (tail.length > 40) tail.shift()
      if (options.echo) options.echo.write(`${line}\n`)
      else options.log.debug({ child: options.name }, line)
    }
  }
  child.stdout?.on("data", capture)
  child.stderr?.on("data", capture)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }))
  })
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve)
    child.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") reject(new MissingBinaryError(options.command, options.installHint))
      else reject(err)
    })
  })
  killOnExit(child)
  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    await exited
    clearTimeout(timer)
  }
  return { name: options.name, process: child, exited, recentOutput: () => tail.join("\n"), stop }
}

/**
 * Polls `probe` until it resolves true, the child exits, or the deadline passes. Used instead
 * of sleeping: every server we start is waited for by asking it whether it is ready.
 */
export async function waitUntilReady(
  child: ManagedChild,
  probe: () => Promise<boolean>,
  deadlineMs: number,
): Promise<void> {
  const started = Date.now()
  let exited = false
  void child.exited.then(() => {
    exited = true
  })
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    if (exited) {
      throw new Error(`${child.name} exited during start-up:\n${child.recentOutput()}`)
    }
    if (await probe()) return
    if (Date.now() - started > deadlineMs) {
      await child.stop("SIGKILL")
      throw new Error(`${child.name} was not ready within ${deadlineMs} ms:\n${child.recentOutput()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}
