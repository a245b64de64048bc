/**
 * For the end-to-end benches: the whole local stack (`infra/start.ts`, as `npm start` runs it)
 * plus a second edge process on the same NATS and functions, with helpers to read per-process
 * CPU time and the Prometheus counters of the runtime and of each edge.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../infra/local/ports"
import { descendants, startProgram } from "../test/support/processes"

const root = join(import.meta.dirname, "..")
const PATH = process.env.PATH ?? "/usr/bin:/bin"
/** Edge rate limits high enough that the benches measure the stack, not the limiter. */
export const UNLIMITED_EDGE_RATES = {
  COVE_EDGE_RATE_PER_SEC: "100000",
  COVE_EDGE_RATE_BURST: "100000",
  COVE_EDGE_USER_RATE_PER_SEC: "100000",
  COVE_EDGE_USER_RATE_BURST: "100000",
}

/** The stack's and the edges' log level: "info" logs every socket the edges close, and why. */
const logLevel = process.env.COVE_BENCH_LOG_LEVEL ?? "warn"

export type Edge = { readonly url: string; readonly http: string; readonly pid: number }

export type TwoEdgeStack = {
  readonly dataDir: string
  /** The function runtime (stand-in for the OpenFaaS gateway): /function/<name>, /metrics. */
  readonly gateway: string
  readonly natsUrl: string
  readonly pgPort: number
  readonly edgeA: Edge
  readonly edgeB: Edge
  /** The process started for `infra/start.ts` (tsx, whose child runs the runtime and the connector). */
  readonly stackPid: number
  /** The persist function's process (the sequencer). */
  readonly persistPid: number | undefined
  stop(): Promise<void>
}

/**
 * Starts the stack with `edgeEnv` (COVE_EDGE_* settings) for both edges. Another stack file
 * (`COVE_STACK_FILE`) measures a subset of the functions, e.g. without the search indexer.
 */
export async function startTwoEdgeStack(edgeEnv: Record<string, string>): Promise<TwoEdgeStack> {
  const dataDir = await mkdtemp(join(tmpdir(), "cove-bench-"))
  await chmod(dataDir, 0o755)
  const cove = startProgram(
    join(root, "node_modules/.bin/tsx"),
    ["infra/start.ts"],
    {
      PATH,
      LOG_LEVEL: logLevel,
      COVE_DATA_DIR: dataDir,
      COVE_STACK_FILE: process.env.COVE_STACK_FILE ?? "./stack.yml",
      COVE_GATEWAY_PORT: "0",
      COVE_EDGE_PORT: "0",
      // To profile the runtime and the connector, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env.COVE_BENCH_STACK_NODE_OPTIONS === undefined
        ? {}
        : { NODE_OPTIONS: process.env.COVE_BENCH_STACK_NODE_OPTIONS }),
      ...edgeEnv,
    },
    root,
  )
  let edgeB: ReturnType<typeof startProgram> | undefined
  const stop = async () => {
    edgeB?.child.kill("SIGTERM")
    await edgeB?.exited
    cove.child.kill("SIGINT")
    await cove.exited
    // The stack's log (COVE_BENCH_LOG_LEVEL, warn by default), to find out why a run went wrong.
    if (process.env.COVE_BENCH_STACK_LOG !== undefined)
      await writeFile(
        process.env.COVE_BENCH_STACK_LOG,
        `${cove.output()}\n--- edge B\n${edgeB?.output() ?? ""}`,
      )
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    await cove.waitFor(/Cove is up/, 120_000)
    const gateway = (await cove.waitFor(/functions +(http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const edgeAUrl = (await cove.waitFor(/edge +(ws:\/\/127\.0\.0\.1:\d+\/v1\/ws)/))[1] as string
    const natsUrl = (await cove.waitFor(/nats +(nats:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const pgPort = (await cove.waitFor(/postgres +postgres:\/\/cove:\*\*\*@127\.0\.0\.1:(\d+)/))[1] as string
    // A free port can be taken by someone else before edge B binds it: then edge B exits, and
    // it is started again on another one.
    let edgeBPort = 0
    for (let attempt = 1; ; attempt++) {
      edgeBPort = await freePort()
      const started = startProgram(process.execPath, [join(root, "build/gateway.mjs")], {
        PATH,
        LOG_LEVEL: logLevel,
        NATS_URL: natsUrl,
        COVE_EDGE_PORT: String(edgeBPort),
        COVE_FUNCTIONS_URL: gateway,
        COVE_JWKS_URL: `${gateway}/function/auth/jwks`,
        ...edgeEnv,
      })
      edgeB = started
      let exited = false
      void started.exited.then(() => {
        exited = true
      })
      const deadline = Date.now() + 15_000
      let up = false
      while (!up && !exited && Date.now() <= deadline) {
        up = await fetch(`http://127.0.0.1:${edgeBPort}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
        if (!up) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      if (up && !exited) break
      if (!exited) started.child.kill("SIGKILL")
      if (exited && attempt < 3) continue
      throw new Error(`edge B did not start:\n${started.output().slice(-2000)}`)
    }
    const edgeBHttp = `http://127.0.0.1:${edgeBPort}`
    let edgeAPid: number | undefined
    let persistPid: number | undefined
    for (const p of await descendants(cove.child.pid as number)) {
      const cmd = await readFile(`/proc/${p.pid}/cmdline`, "utf8").catch(() => "")
      if (cmd.includes("gateway.mjs")) edgeAPid = p.pid
      const env = await readFile(`/proc/${p.pid}/environ`, "utf8").catch(() => "")
      if (env.includes("functions/persist/handler.js")) persistPid = p.pid
    }
    if (edgeAPid === undefined) throw new Error("edge A process not found")
    const edgeAHttp = edgeAUrl.replace(/^ws:/, "http:").replace(/\/v1\/ws$/, "")
    return {
      dataDir,
      gateway,
      natsUrl,
      pgPort: Number(pgPort),
      edgeA: { url: edgeAUrl, http: edgeAHttp, pid: edgeAPid },
      edgeB: { url: `ws://127.0.0.1:${edgeBPort}/v1/ws`, http: edgeBHttp, pid: edgeB.child.pid as number },
      stackPid: cove.child.pid as number,
      persistPid,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** CPU seconds used so far by a process (user + system), from /proc. */
/** POSTs JSON to a function of the stack (with a bearer token if given) and answers its JSON. */
export function functionPoster(gateway: string) {
  return async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${gateway}/function/${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    })
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    // biome-ignore lint/suspicious/noExplicitAny: a script reading JSON answers it just made.
    return (await res.json()) as Record<string, any>
  }
}

export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Sum of a Prometheus series over the label sets that contain `label` ("" for all). */
export async function metricSum(url: string, name: string, label = ""): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([\\d.e+-]+)$`, "gm"))]
    .filter((m) => (m[1] ?? "").includes(label))
    .reduce((a, m) => a + Number(m[2]), 0)
}

export const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN
}

/**
 * CPU seconds used so far by every process of the stack, grouped: nats-server, postgres (all
 * backends), each function by name, the runtime + connector process, each edge, and this process.
 */
export async function cpuByProcess(stack: TwoEdgeStack): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const add = (name: string, seconds: number) => out.set(name, (out.get(name) ?? 0) + seconds)
  for (const p of await descendants(stack.stackPid)) {
    const seconds = await cpuSeconds(p.pid).catch(() => 0)
    if (p.pid === stack.edgeA.pid) add("edge A", seconds)
    else {
      const cmd = await readFile(`/proc/${p.pid}/cmdline`, "utf8").catch(() => "")
      const env = await readFile(`/proc/${p.pid}/environ`, "utf8").catch(() => "")
      const fn = /functions\/([a-z-]+)\/handler\.js/.exec(env)?.[1]
      if (fn !== undefined && cmd.includes("function-server")) add(`function ${fn}`, seconds)
      else if (cmd.includes("infra/start.ts")) add("runtime + connector", seconds)
      else if (cmd.includes("nats-server")) add("nats-server", seconds)
      else if (cmd.includes("postgres")) add("postgres", seconds)
      else add("other", seconds)
    }
  }
  // The tsx wrapper that started the stack's node process.
  add("runtime + connector", await cpuSeconds(stack.stackPid))
  add("edge B", await cpuSeconds(stack.edgeB.pid))
  const self = process.cpuUsage()
  add("bench (load generator)", (self.user + self.system) / 1e6)
  return out
}

/** `after - before` per process, in µs per message, largest first. */
export function cpuPerMessage(
  before: Map<string, number>,
  after: Map<string, number>,
  messages: number,
): string {
  const rows = [...after].map(
    ([name, s]) => [name, ((s - (before.get(name) ?? 0)) / messages) * 1e6] as const,
  )
  const total = rows.reduce((a, [, us]) => a + us, 0)
  return `${rows
    .filter(([, us]) => us >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => `${name} ${us.toFixed(0)}`)
    .join(", ")}; total ${total.toFixed(0)} us per message`
}
