import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import t from "tap"
import { ConfigError, loadConfig, redacted } from "../../lib/config"
import { functionFields, stackFields } from "../../lib/settings"

t.test("defaults apply when nothing is set", async (t) => {
  const config = loadConfig(stackFields, { env: {}, secretsDir: "/nonexistent" })
  t.equal(config.gatewayPort, 8080)
  t.equal(config.edgePort, 8081)
  t.equal(config.dataDir, "./.cove")
  t.equal(config.databaseUrl, undefined)
  t.ok(Object.isFrozen(config))
})

t.test("every bad value is reported at once, naming the variable", async (t) => {
  const err = t.throws(() =>
    loadConfig(stackFields, {
      env: { COVE_GATEWAY_PORT: "80800", COVE_EDGE_PORT: "abc", LOG_LEVEL: "loud", S3_ENDPOINT: "ftp://x" },
      secretsDir: "/nonexistent",
    }),
  ) as ConfigError
  t.type(err, ConfigError)
  t.equal(err.problems.length, 4)
  for (const name of ["COVE_GATEWAY_PORT", "COVE_EDGE_PORT", "LOG_LEVEL", "S3_ENDPOINT"])
    t.match(err.message, name)
})

t.test("secrets come from files first, then the environment, and are never logged", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cove-secrets-"))
  await writeFile(join(dir, "database-url"), "postgres://from-file\n")
  const config = loadConfig(functionFields, { env: { DATABASE_URL: "postgres://from-env" }, secretsDir: dir })
  t.equal(config.databaseUrl, "postgres://from-file")
  t.equal(redacted(functionFields, config).databaseUrl, "[redacted]")
  const missing = t.throws(() =>
    loadConfig(functionFields, { env: {}, secretsDir: `${dir}-none` }),
  ) as ConfigError
  t.match(missing.message, /DATABASE_URL: missing/)
})
