import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import t from "tap"
import { freePort } from "../../infra/local/ports"
import { startFunctionProcess } from "../../infra/runtime/function-process"
import { startRuntime } from "../../infra/runtime/runtime"
import { type FunctionSpec, parseStack } from "../../infra/stack"
import { Registry } from "../../lib/metrics"
import { buildTestBundles } from "../support/bundles"
import { errorOf, jsonOf } from "../support/http"
import { testLog } from "../support/servers"

/** The echo fixture's process, quiet, with no secrets. */
function startEcho(spec: FunctionSpec, serverScript: string, dir: string, pickPort?: () => Promise<number>) {
  return startFunctionProcess({
    spec,
    serverScript,
    env: { LOG_LEVEL: "silent" },
    secrets: {},
    secretsRoot: join(dir, "secrets"),
    log: testLog,
    ...(pickPort === undefined ? {} : { pickPort }),
  })
}

t.test("the runtime serves a bundle at /function/<name> like the OpenFaaS gateway", async (t) => {
  const { dir, serverScript } = await buildTestBundles(t, { echo: "test/fixtures/echo-function/main.ts" })
  const stack = parseStack(join(dir, "stack.yml"), {
    version: "1.0",
    provider: { name: "openfaas" },
    functions: {
      echo: {
        lang: "node20",
        handler: "./functions/echo",
        image: "test/echo",
        environment: { exec_timeout: "1s", MAX_JSON_SIZE: "1kb" },
      },
    },
  })
  const spec = stack.functions[0]
  if (spec === undefined) throw new Error("no function")
  const fn = await startEcho(spec, serverScript, dir)
  t.teardown(() => fn.stop())
  const registry = new Registry()
  const runtime = await startRuntime({ host: "127.0.0.1", port: 0, functions: [fn], registry, log: testLog })
  t.teardown(() => runtime.stop())
  const base = `http://127.0.0.1:${runtime.port}`

  t.test(
    "sub-paths, query and JSON body are passed through; client address headers are not trusted",
    async (t) => {
      const res = await fetch(`${base}/function/echo/echo/abc%20d?x=1&y=2&x=3`, {
        headers: { "x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.9" },
      })
      t.equal(res.status, 200)
      t.match(res.headers.get("content-type"), /^application\/json/)
      t.same(await jsonOf(res), {
        method: "GET",
        path: "/echo/abc%20d",
        params: { item: "abc d" },
        query: { x: "1", y: "2" },
        body: {},
        forwarded_for: "127.0.0.1",
        real_ip: "127.0.0.1",
      })
      const post = await fetch(`${base}/function/echo/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "你好 👋" }),
      })
      t.same((await jsonOf(post)).body, { text: "你好 👋" })
    },
  )

  t.test("errors are JSON with a code and the catalogue's status", async (t) => {
    const refused = await fetch(`${base}/function/echo/refuse`)
    t.equal(refused.status, 403)
    t.match(await errorOf(refused), { code: "FORBIDDEN", message: "not for you" })

    const failed = await fetch(`${base}/function/echo/fail`)
    t.equal(failed.status, 500)
    const err = await errorOf(failed)
    t.equal(err.code, "INTERNAL")
    t.notMatch(JSON.stringify(err), /hunter2/, "the cause never reaches the caller")
    t.type(err.request_id, "string")

    const bad = await fetch(`${base}/function/echo/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{nope",
    })
    t.equal(bad.status, 400)
    t.equal((await errorOf(bad)).code, "INVALID_JSON")

    const missing = await fetch(`${base}/function/echo/nowhere`)
    t.equal(missing.status, 404)
    t.equal((await errorOf(missing)).code, "NOT_FOUND")

    const wrongMethod = await fetch(`${base}/function/echo/refuse`, { method: "DELETE" })
    t.equal(wrongMethod.status, 405)
  })

  t.test("unknown functions, oversized bodies and timeouts", async (t) => {
    const unknown = await fetch(`${base}/function/nope`)
    t.equal(unknown.status, 404)
    t.equal((await errorOf(unknown)).code, "FUNCTION_NOT_FOUND")

    const big = await fetch(`${base}/function/echo/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "x".repeat(2000) }),
    })
    t.equal(big.status, 413)
    t.equal((await errorOf(big)).code, "PAYLOAD_TOO_LARGE")

    // A streamed body has no content-length: the limit is enforced while it arrives.
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode("x".repeat(500)))
        c.close()
      },
    })
    const streamed = await fetch(`${base}/function/echo/echo`, {
      method: "POST",
      body: chunks,
      duplex: "half",
    } as RequestInit)
    t.equal(streamed.status, 413)

    const hung = await fetch(`${base}/function/echo/hang`)
    t.equal(hung.status, 504)
    t.equal((await errorOf(hung)).code, "FUNCTION_TIMEOUT")

    const after = await fetch(`${base}/function/echo/echo`)
    t.equal(after.status, 200, "the function still answers afterwards")
  })

  t.test("a string body with its own content-type is sent as it is", async (t) => {
    const res = await fetch(`${base}/function/echo/text`)
    t.equal(res.headers.get("content-type"), "text/plain")
    t.equal(await res.text(), "plain words")
  })

  t.test("health and metrics", async (t) => {
    const health = await fetch(`${base}/_/health`)
    t.equal(health.status, 200)
    t.same((await jsonOf(health)).functions, { echo: "ready" })
    const metrics = await (await fetch(`${base}/metrics`)).text()
    t.match(metrics, /cove_function_invocations_total\{code="200",function="echo"\} \d+/)
    t.match(metrics, /cove_function_invocations_total\{code="504",function="echo"\} 1/)
    t.match(metrics, /cove_function_duration_seconds_count\{function="echo"\} \d+/)
  })
})

t.test("a port another process took is not mistaken for the function's: it starts on another", async (t) => {
  const { dir, serverScript } = await buildTestBundles(t, { echo: "test/fixtures/echo-function/main.ts" })
  const stack = parseStack(join(dir, "stack.yml"), {
    version: "1.0",
    provider: { name: "openfaas" },
    functions: { echo: { lang: "node20", handler: "./functions/echo", image: "test/echo" } },
  })
  const spec = stack.functions[0]
  if (spec === undefined) throw new Error("no function")
  // Another stack's function server on the port this one is handed first: it answers health too.
  const squatter = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok","pid":1}')
  })
  await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve))
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())))
  const taken = (squatter.address() as AddressInfo).port
  const handed: number[] = []
  const fn = await startEcho(spec, serverScript, dir, async () => {
    const port = handed.length === 0 ? taken : await freePort()
    handed.push(port)
    return port
  })
  t.teardown(() => fn.stop())
  t.equal(handed.length, 2, "a second port after the first was taken")
  t.not(fn.port(), taken)
  const res = await fetch(`http://127.0.0.1:${fn.port()}/echo`)
  t.equal(res.status, 200, "the function answers on its own port")
})
