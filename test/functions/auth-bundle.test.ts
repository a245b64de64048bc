/** Smoke test of the built auth bundle: it loads its config, starts, and answers over HTTP. */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import t from "tap"
import { freePort } from "../../infra/local/ports"
import { buildTestBundles } from "../support/bundles"
import { jsonOf } from "../support/http"
import { eventually, withNats, withPostgres, withSchema } from "../support/servers"

t.test("the bundle registers a user and serves its JWKS", async (t) => {
  const [pgServer, natsServer] = await Promise.all([withPostgres(t), withNats(t)])
  const { schema } = await withSchema(t, pgServer)
  const { dir, serverScript } = await buildTestBundles(t, { auth: "functions/auth/main.ts" })
  const port = await freePort()
  const child = spawn(process.execPath, [serverScript], {
    env: {
      PORT: String(port),
      COVE_HANDLER: join(dir, "functions", "auth", "handler.js"),
      COVE_SECRETS_DIR: join(dir, "no-secrets"),
      MAX_JSON_SIZE: "16kb",
      LOG_LEVEL: "silent",
      DATABASE_URL: pgServer.url,
      PG_SCHEMA: schema,
      NATS_URL: natsServer.url,
      AUTH_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      AUTH_SCRYPT_N: "1024",
      AUTH_SCRYPT_P: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  t.teardown(async () => {
    child.kill("SIGTERM")
    await exited
  })
  const base = `http://127.0.0.1:${port}`
  await eventually(
    () =>
      fetch(`${base}/_/health`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      ),
    "the function server",
  )

  const res = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "uma", password: "correct horse" }),
  })
  t.equal(res.status, 201)
  t.match(await jsonOf(res), { token_type: "Bearer", user: { username: "uma" } })
  const keys = await jsonOf(await fetch(`${base}/jwks`))
  t.equal(keys.keys.length, 1)
})
