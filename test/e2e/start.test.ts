/**
 * `npm start` as a user runs it: the CLI brings up NATS, PostgreSQL, S3, the runtime, the
 * connector and the edge; functions answer; a message published to JetStream is sequenced
 * into PostgreSQL by the event function; Ctrl-C leaves no process behind; data survives.
 */
import { randomUUID } from "node:crypto"
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "nats"
import pg from "pg"
import t, { type Test } from "tap"
import { loadStack } from "../../infra/stack"
import { subjects } from "../../lib/protocol/subjects"
import { repoRoot } from "../support/bundles"
import { jsonOf } from "../support/http"
import { descendants, isAlive, startProgram, stillRunning } from "../support/processes"

const PATH = process.env.PATH ?? "/usr/bin:/bin"
const tsx = join(repoRoot, "node_modules/.bin/tsx")

function startCove(env: Record<string, string>) {
  return startProgram(
    tsx,
    ["infra/start.ts"],
    // As package.json's start script does: the AWS SDK's Node 22 notice is not for this pinned version.
    {
      PATH,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      LOG_LEVEL: "warn",
      COVE_GATEWAY_PORT: "0",
      COVE_EDGE_PORT: "0",
      ...env,
    },
    repoRoot,
  )
}

async function dataDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cove-start-"))
  // As a project folder would be: PostgreSQL runs as the postgres user and must get in.
  await chmod(dir, 0o755)
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function up(t: Test, env: Record<string, string>) {
  const cove = startCove(env)
  t.teardown(async () => {
    if (cove.child.exitCode !== null) return
    // Ask politely first: a SIGKILL would leave the stack's own processes running.
    const tree = await descendants(cove.child.pid as number)
    cove.child.kill("SIGTERM")
    const timer = setTimeout(() => {
      if (isAlive(cove.child.pid as number)) cove.child.kill("SIGKILL")
      for (const p of tree) if (stillRunning(p)) process.kill(p.pid, "SIGKILL")
    }, 20_000)
    await cove.exited
    clearTimeout(timer)
  })
  await cove.waitFor(/Cove is up in ([\d.]+) s/)
  const gateway = (await cove.waitFor(/functions +(http:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const edge = (await cove.waitFor(/edge +(ws:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const nats = (await cove.waitFor(/nats +(nats:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const pgPort = (await cove.waitFor(/postgres +postgres:\/\/cove:\*\*\*@127\.0\.0\.1:(\d+)/))[1] as string
  return { cove, gateway, edge, nats, pgPort }
}

async function stop(t: Test, cove: ReturnType<typeof startCove>) {
  const children = await descendants(cove.child.pid as number)
  t.ok(children.length >= 5, `the stack runs ${children.length} processes`)
  cove.child.kill("SIGINT")
  t.equal(await cove.exited, 0, "exits 0 on SIGINT")
  t.match(cove.output(), /Cove stopped\./)
  t.same(children.filter(stillRunning), [], "no process is left behind")
}

t.test("npm start: up, serving, stopped cleanly, and data survives a restart", async (t) => {
  const dir = await dataDir(t)
  const first = await up(t, { COVE_DATA_DIR: dir })

  const health = await fetch(`${first.gateway}/_/health`)
  t.equal(health.status, 200)
  const names = loadStack(join(repoRoot, "stack.yml")).functions.map((f) => f.name)
  t.same(
    (await jsonOf(health)).functions,
    Object.fromEntries(names.map((n) => [n, "ready"])),
    "every function is ready",
  )
  const edgeHealth = await fetch(`${first.edge.replace("ws:", "http:").replace("/v1/ws", "")}/healthz`)
  t.equal(edgeHealth.status, 200)

  // HTTP functions through the runtime: the first account (an admin), who registers a second.
  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${first.gateway}/function/${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    })
  const register = await post("auth/register", { username: "alice", password: "correct horse battery" })
  t.equal(register.status, 201)
  const alice = await jsonOf(register)
  t.equal(alice.token_type, "Bearer")
  const bob = await jsonOf(
    await post("auth/register", { username: "bob", password: "another good one" }, alice.access_token),
  )
  const group = await jsonOf(
    await post("conversations", { kind: "group", title: "团队", members: [bob.user.id] }, alice.access_token),
  )
  t.match(group.id, /^[A-Za-z0-9_-]+$/)

  // An event function through the connector: integrator send → JetStream → persist →
  // PostgreSQL → delivery, then history.
  const nc = await connect({ servers: first.nats })
  const id = randomUUID()
  const sub = nc.subscribe(subjects.delivery(group.id), { max: 1 })
  await nc.flush()
  const body = { kind: "text", text: "你好, Cove 👋" }
  const sent = await post("messages", { id, conv: group.id, body }, bob.access_token)
  t.equal(sent.status, 202)
  for await (const m of sub)
    t.match(m.json(), { type: "message", conv: group.id, seq: 1, id, from: bob.user.id, body })
  await nc.close()
  const history = await fetch(`${first.gateway}/function/messages?conv=${group.id}&after=0`, {
    headers: { authorization: `Bearer ${alice.access_token}` },
  })
  t.match((await jsonOf(history)).items, [{ seq: 1, id, from: bob.user.id, body }])
  const password = (await readFile(join(dir, "postgres", "postgres-password"), "utf8")).trim()
  const dbUrl = `postgres://cove:${encodeURIComponent(password)}@127.0.0.1:${first.pgPort}/postgres`
  const db = new pg.Client({ connectionString: dbUrl, options: "-c search_path=cove" })
  await db.connect()
  t.same((await db.query("SELECT seq::int, body->>'text' AS text FROM messages")).rows, [
    { seq: 1, text: "你好, Cove 👋" },
  ])
  await db.end()

  await stop(t, first.cove)

  const second = await up(t, { COVE_DATA_DIR: dir })
  const login = await fetch(`${second.gateway}/function/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "alice", password: "correct horse battery" }),
  })
  t.equal(login.status, 200, "the user registered before the restart can log in")
  const db2 = new pg.Client({
    connectionString: dbUrl.replace(first.pgPort, second.pgPort),
    options: "-c search_path=cove",
  })
  await db2.connect()
  t.equal(
    (await db2.query("SELECT count(*)::int AS n FROM messages")).rows[0].n,
    1,
    "the stored message survived",
  )
  await db2.end()
  await stop(t, second.cove)
})

t.test("two stacks with different folders and ports run side by side", async (t) => {
  const [a, b] = await Promise.all([
    up(t, { COVE_DATA_DIR: await dataDir(t) }),
    up(t, { COVE_DATA_DIR: await dataDir(t) }),
  ])
  t.not(a.gateway, b.gateway)
  t.equal((await fetch(`${a.gateway}/_/health`)).status, 200)
  t.equal((await fetch(`${b.gateway}/_/health`)).status, 200)
  await Promise.all([stop(t, a.cove), stop(t, b.cove)])
})

t.test("a second stack on the same data folder is refused", async (t) => {
  const dir = await dataDir(t)
  const a = await up(t, { COVE_DATA_DIR: dir })
  const b = startCove({ COVE_DATA_DIR: dir })
  t.equal(await b.exited, 1)
  t.match(b.output(), /another Cove stack \(pid \d+\) is using/)
  await stop(t, a.cove)
})

t.test("bad settings stop the start with one clear message, before anything starts", async (t) => {
  const dir = await dataDir(t)
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      "a bad value",
      { COVE_GATEWAY_PORT: "eighty", LOG_LEVEL: "shout" },
      /COVE_GATEWAY_PORT="eighty": must be a port number/,
    ],
    [
      "every bad value at once",
      { COVE_GATEWAY_PORT: "eighty", LOG_LEVEL: "shout" },
      /LOG_LEVEL="shout": must be one of/,
    ],
    [
      "a missing nats-server",
      { NATS_SERVER_BIN: "/nonexistent/nats-server" },
      /nats-server was not found on PATH\. Install it with `apt-get install nats-server`/,
    ],
    ["a malformed stack.yml", { COVE_STACK_FILE: join(dir, "broken.yml") }, /broken\.yml is not valid/],
  ]
  await writeFile(
    join(dir, "broken.yml"),
    "version: 1\nprovider: {name: openfaas}\nfunctions: {Bad_Name: {}}\n",
  )
  for (const [what, env, message] of cases) {
    const cove = startCove({ COVE_DATA_DIR: join(dir, "data"), ...env })
    t.equal(await cove.exited, 1, `${what}: exit 1`)
    t.match(cove.output(), message, `${what}: says what is wrong`)
  }
  // A port in use: claimed here, so the stack must refuse it before starting servers.
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const cove = startCove({ COVE_DATA_DIR: join(dir, "data"), COVE_EDGE_PORT: String(port) })
  t.equal(await cove.exited, 1)
  t.match(cove.output(), new RegExp(`port ${port} is already in use; set COVE_EDGE_PORT`))
  t.notMatch(cove.output(), /Cove is up/)
})
