/**
 * Every bundle `npm run build` makes starts and answers: each function's handler.js under the
 * function server (as of-watchdog's upstream) and called the way the official node20 template
 * calls it, plus the edge, the connector and the migration runner. Run after `npm run build`.
 */
import { join } from "node:path"
import { connect } from "nats"
import t from "tap"
import { freePort } from "../../infra/local/ports"
import { loadStack } from "../../infra/stack"
import { repoRoot } from "../support/bundles"
import { errorOf } from "../support/http"
import { startProgram } from "../support/processes"
import { eventually, withNats, withPostgres, withS3, withSchema } from "../support/servers"

const build = join(repoRoot, "build")
const PATH = process.env.PATH ?? "/usr/bin:/bin"
const node = process.execPath

t.test("the built bundles", async (t) => {
  const [nats, pgServer, s3] = await Promise.all([withNats(t), withPostgres(t), withS3(t)])
  const { schema } = await withSchema(t, pgServer)
  const env = {
    PATH,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    LOG_LEVEL: "info",
    DATABASE_URL: pgServer.url,
    PG_SCHEMA: schema,
    NATS_URL: nats.url,
    S3_ENDPOINT: s3.endpoint,
    S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AUTH_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
    COVE_SECRETS_DIR: "/nonexistent",
  }
  const stack = loadStack(join(repoRoot, "stack.yml"))

  for (const fn of stack.functions) {
    t.test(`${fn.name}: handler.js follows the template contract and never throws`, async (t) => {
      // An unknown route, called as the official template calls it, must still be a JSON error
      // with its status: the template itself would turn a thrown error into a 200.
      const call = startProgram(
        node,
        [
          join(repoRoot, "test/support/template-call.mjs"),
          join(fn.handlerDir, "handler.js"),
          "GET",
          "/no/such/route",
        ],
        env,
      )
      t.equal(await call.exited, 0, call.output())
      const answer = JSON.parse(call.output().match(/^RESULT (.*)$/m)?.[1] ?? "null") as {
        status: number
        headers: Record<string, string>
        body: string
      }
      t.equal(answer.status, 404)
      t.match(answer.headers["content-type"], /^application\/json/)
      t.match(JSON.parse(answer.body), { error: { code: "NOT_FOUND" } })
    })

    t.test(`${fn.name}: starts under the function server and answers`, async (t) => {
      const started = performance.now()
      const server = startProgram(node, [join(build, "function-server.mjs")], {
        ...env,
        PORT: "0",
        COVE_HANDLER: join(fn.handlerDir, "handler.js"),
        MAX_JSON_SIZE: String(fn.maxBodyBytes),
      })
      t.teardown(() => server.child.kill("SIGTERM"))
      const port = Number((await server.waitFor(/"port":(\d+)/))[1])
      const health = await fetch(`http://127.0.0.1:${port}/_/health`)
      t.equal(health.status, 200)
      const ready = performance.now()
      const res = await fetch(`http://127.0.0.1:${port}/no/such/route`)
      t.equal((await errorOf(res)).code, "NOT_FOUND")
      t.comment(
        `${fn.name} cold start: ${Math.round(ready - started)} ms to healthy, first answer after ${Math.round(performance.now() - started)} ms`,
      )
      server.child.kill("SIGTERM")
      t.equal(await server.exited, 0, "drains and exits 0 on SIGTERM")
    })
  }

  t.test("the edge bundle starts and reports health", async (t) => {
    const port = await freePort()
    const edge = startProgram(node, [join(build, "gateway.mjs")], { ...env, COVE_EDGE_PORT: String(port) })
    t.teardown(() => edge.child.kill("SIGKILL"))
    await edge.waitFor(/listening/)
    t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200)
    edge.child.kill("SIGTERM")
    t.equal(await edge.exited, 0)
  })

  t.test("the connector bundle creates its streams and reports health", async (t) => {
    const port = await freePort()
    const connector = startProgram(node, [join(build, "connector.mjs")], {
      ...env,
      COVE_STACK_FILE: join(repoRoot, "stack.yml"),
      COVE_CONNECTOR_METRICS_PORT: String(port),
    })
    t.teardown(() => connector.child.kill("SIGKILL"))
    await connector.waitFor(/connector started/)
    const health = await eventually(
      () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.status,
          () => undefined,
        ),
      "the connector's health endpoint",
    )
    t.equal(health, 200)
    const nc = await connect({ servers: nats.url })
    const jsm = await nc.jetstreamManager()
    // One subject per partition that stack.yml asks for.
    const persist = loadStack(join(repoRoot, "stack.yml")).functions.find((f) => f.name === "persist")
    t.equal((await jsm.streams.info("COVE_IN")).config.subjects.length, persist?.topic?.partitions)
    await nc.close()
    connector.child.kill("SIGTERM")
    t.equal(await connector.exited, 0)
  })

  t.test("the migration bundle applies the schema, and again is a no-op", async (t) => {
    const fresh = { ...env, PG_SCHEMA: "bundle_migrations" }
    const first = startProgram(node, [join(build, "migrate.mjs")], fresh)
    t.equal(await first.exited, 0, first.output())
    t.match(first.output(), /migrations applied/)
    const second = startProgram(node, [join(build, "migrate.mjs")], fresh)
    t.equal(await second.exited, 0)
    t.match(second.output(), /schema is current/)
  })
})
