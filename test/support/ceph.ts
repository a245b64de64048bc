/**
 * A real S3 store for tests that need one (store-side enforcement of presigned limits, which
 * s3rver does not do): Ceph's RADOS Gateway from Debian's packages, as one monitor, one OSD on
 * memstore and one radosgw, all on 127.0.0.1 free ports, from a private config in a temp folder
 * with authentication off (loopback only). ARCHITECTURE.md has the measurements; start-up is
 * about 13-18 s. Install: `apt-get install -y ceph-mon ceph-osd radosgw ceph-common` (.ci/run).
 */
import { execFile } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import type { Test } from "tap"
import { findOnPath, type ManagedChild, startChild, waitUntilReady } from "../../infra/local/child"
import { freePort } from "../../infra/local/ports"
import { testLog } from "./servers"

const run = promisify(execFile)
const INSTALL_HINT = "Install Ceph: apt-get install -y ceph-mon ceph-osd radosgw ceph-common"

export type LocalRgw = {
  readonly endpoint: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** Milliseconds from nothing to a working S3 user. */
  readonly startupMs: number
}

function config(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
# Loopback only, a throw-away cluster: no cephx.
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# Without it radosgw cannot fetch its config from the monitor under auth none.
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
osd objectstore = memstore
memstore device bytes = 1073741824
keyring = /dev/null

[client.rgw.cove]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`
}

/** Polls `probe` until true or the deadline, with growing pauses (never a fixed sleep). */
async function until(what: string, deadline: number, probe: () => Promise<boolean>): Promise<void> {
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (await probe()) return
    if (Date.now() > deadline) throw new Error(`Ceph: ${what} not ready in time`)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

export async function withRgw(t: Test, deadlineMs = 45_000): Promise<LocalRgw> {
  for (const binary of ["monmaptool", "ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph"])
    if ((await findOnPath(binary, process.env.PATH ?? "/usr/bin:/bin")) === undefined)
      throw new Error(`${binary} was not found on PATH. ${INSTALL_HINT}`)
  const started = Date.now()
  const deadline = started + deadlineMs
  const dir = await mkdtemp(join(tmpdir(), "cove-ceph-"))
  const children: ManagedChild[] = []
  t.teardown(async () => {
    // The gateway first, the monitor last, as a cluster is taken down.
    for (const child of children.reverse()) await child.stop("SIGTERM", 5_000)
    await rm(dir, { recursive: true, force: true })
  })
  for (const sub of ["run", "log", "mon", "osd", "rgw"]) await mkdir(join(dir, sub))
  const [monPort, rgwPort] = [await freePort(), await freePort()]
  const fsid = randomUUID()
  const conf = join(dir, "ceph.conf")
  await writeFile(conf, config(dir, fsid, monPort, rgwPort))
  const ceph = (args: string[]) =>
    run("ceph", ["-c", conf, "--connect-timeout", "5", ...args], { timeout: 10_000 })
  const start = async (name: string, command: string, args: string[]) => {
    const child = await startChild({
      name,
      command,
      args: ["-f", "-c", conf, ...args],
      log: testLog,
      installHint: INSTALL_HINT,
    })
    children.push(child)
    return child
  }
  const waitFor = (child: ManagedChild, probe: () => Promise<boolean>) =>
    waitUntilReady(child, probe, Math.max(1_000, deadline - Date.now()))

  // One monitor.
  await run("monmaptool", [
    "--create",
    "--addv",
    "a",
    `[v2:127.0.0.1:${monPort}]`,
    "--fsid",
    fsid,
    join(dir, "monmap"),
  ])
  await run("ceph-mon", ["--mkfs", "-i", "a", "--monmap", join(dir, "monmap"), "-c", conf])
  const mon = await start("ceph-mon", "ceph-mon", ["-i", "a"])
  await waitFor(mon, () =>
    ceph(["mon", "stat"]).then(
      () => true,
      () => false,
    ),
  )

  // One OSD on memstore.
  const osdUuid = randomUUID()
  const id = (await ceph(["osd", "new", osdUuid])).stdout.trim()
  await mkdir(join(dir, "osd", `osd.${id}`))
  await run("ceph-osd", ["-c", conf, "-i", id, "--mkfs", "--osd-uuid", osdUuid])
  const osd = await start("ceph-osd", "ceph-osd", ["-i", id])
  await waitFor(osd, () =>
    ceph(["osd", "stat", "-f", "json"]).then(
      (r) => (JSON.parse(r.stdout) as { num_up_osds: number }).num_up_osds === 1,
      () => false,
    ),
  )

  // The gateway, then an S3 user.
  const rgw = await start("radosgw", "radosgw", ["-n", "client.rgw.cove"])
  const endpoint = `http://127.0.0.1:${rgwPort}`
  await waitFor(rgw, () =>
    fetch(endpoint, { signal: AbortSignal.timeout(2_000) }).then(
      () => true,
      () => false,
    ),
  )
  const credentials = {
    accessKeyId: `COVE${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(20).toString("hex"),
  }
  await until("the S3 user", deadline, () =>
    run("radosgw-admin", [
      "-c",
      conf,
      "user",
      "create",
      "--uid=cove",
      "--display-name=cove",
      `--access-key=${credentials.accessKeyId}`,
      `--secret=${credentials.secretAccessKey}`,
    ]).then(
      () => true,
      () => false,
    ),
  )
  return { endpoint, credentials, startupMs: Date.now() - started }
}
