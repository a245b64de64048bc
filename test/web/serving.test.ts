/**
 * The runtime serves the web app's static files with the headers the page relies on: a CSP
 * without inline script, nosniff, no referrer, revalidation; and nothing outside build/web.
 */

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import t from "tap"
import { startRuntime } from "../../infra/runtime/runtime"
import { Registry } from "../../lib/metrics"
import { testLog } from "../support/servers"

/** A raw GET, so that paths reach the server exactly as written (fetch would normalise "..")). */
function get(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{
    status: number
    headers: Record<string, string | string[] | undefined>
    body: string
  }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => {
        body += c
      })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.once("error", reject)
    req.end()
  })
}

t.test("the web app: files, config, headers, and nothing else", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "cove-web-"))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const dir = join(root, "web")
  await mkdir(dir)
  await writeFile(join(dir, "index.html"), "<!doctype html><title>Cove</title>")
  await writeFile(join(dir, "main.js"), "export {}")
  await writeFile(join(dir, "styles.css"), "body{}")
  await writeFile(join(root, "secret.txt"), "not for the web")
  const runtime = await startRuntime({
    host: "127.0.0.1",
    port: 0,
    functions: [],
    registry: new Registry(),
    log: testLog,
    web: { dir, edgeUrl: undefined, edgePort: () => 18081, storeOrigin: "http://127.0.0.1:19000" },
  })
  t.teardown(() => runtime.stop())
  const port = runtime.port

  const index = await get(port, "/", { host: `localhost:${port}` })
  t.equal(index.status, 200)
  t.equal(index.headers["content-type"], "text/html; charset=utf-8")
  t.equal(index.body, "<!doctype html><title>Cove</title>")
  t.equal(index.headers["x-content-type-options"], "nosniff")
  t.equal(index.headers["referrer-policy"], "no-referrer")
  t.equal(index.headers["cache-control"], "no-cache")
  const csp = String(index.headers["content-security-policy"])
  const directives = new Map(
    csp.split(";").map((d) => {
      const [name, ...values] = d.trim().split(/\s+/)
      return [name, values] as const
    }),
  )
  t.same(directives.get("script-src"), ["'self'"], "only our own script: no inline, no eval")
  t.same(directives.get("style-src"), ["'self'"])
  t.same(directives.get("default-src"), ["'self'"])
  t.same(directives.get("connect-src"), ["'self'", `ws://localhost:18081`, "http://127.0.0.1:19000"])
  t.same(directives.get("img-src"), ["'self'", "blob:", "http://127.0.0.1:19000"])
  t.same(directives.get("frame-ancestors"), ["'none'"])
  t.same(directives.get("base-uri"), ["'none'"])
  t.same(directives.get("form-action"), ["'self'"])

  const again = await get(port, "/", { "if-none-match": String(index.headers.etag) })
  t.equal(again.status, 304, "unchanged files revalidate cheaply")

  t.equal((await get(port, "/main.js")).headers["content-type"], "text/javascript; charset=utf-8")
  t.equal((await get(port, "/styles.css")).headers["content-type"], "text/css; charset=utf-8")

  const config = await get(port, "/app/config.json", { host: `localhost:${port}` })
  t.same(
    JSON.parse(config.body),
    { edge_url: "ws://localhost:18081/v1/ws" },
    "the page's host, the edge's port",
  )
  t.equal(config.headers["cache-control"], "no-store")
  const odd = await get(port, "/app/config.json", { host: "evil.example;script-src *" })
  t.same(JSON.parse(odd.body), { edge_url: "ws://127.0.0.1:18081/v1/ws" }, "a strange Host is not echoed")
  t.notMatch(String(odd.headers["content-security-policy"]), /evil/)

  for (const path of [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/.hidden.js",
    "/nope.js",
    "/index.html/x.js",
  ]) {
    const res = await get(port, path)
    t.equal(res.status, 404, `${path} is not served`)
    t.notMatch(res.body, /not for the web/)
  }
  const post = await fetch(`http://127.0.0.1:${port}/`, { method: "POST" })
  t.equal(post.status, 404, "only GET and HEAD")
})
