/**
 * Every process of the stack with its own NATS user and only the rights infra/nats/permissions.ts
 * gives it: everything a user can do still works (messages and their edits, reactions, recalls,
 * receipts, typing, presence, membership changes, refusals dead-lettered, files and thumbnails,
 * search, integrator sends, revocations), and the server refused nobody anything. Run after
 * `npm run build` (npm test does).
 */
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { readFile, writeFile } from "node:fs/promises"
import sharp from "sharp"
import t from "tap"
import { startNats } from "../../infra/local/nats-server"
import { freePort } from "../../infra/local/ports"
import { natsAuthorization, natsRights } from "../../infra/nats/permissions"
import { loadStack } from "../../infra/stack"
import { inboxPrefixOf } from "../../lib/adapters/nats"
import { passwordVariable } from "../../scripts/nats-config"
import { repoRoot } from "../support/bundles"
import { type Device, sendSeen, stackClients } from "../support/device"
import { sendBytes, sha256 } from "../support/files"
import { startEdgeProcess } from "../support/processes"
import { eventually, testLog } from "../support/servers"
import { scratchDir, withStack } from "../support/stack"

const text = (s: string) => ({ kind: "text", text: s })
/** Short, so that presence keys expire and are swept within the test. */
const PRESENCE = { COVE_EDGE_PRESENCE_HEARTBEAT_MS: "300", COVE_EDGE_PRESENCE_GRACE_MS: "300" }

t.test("every process works with only the NATS rights it is given", async (t) => {
  const dir = await scratchDir(t, "nats-rights")
  const rights = natsRights(loadStack(`${repoRoot}/stack.yml`))
  const passwords = new Map(Object.keys(rights).map((p) => [p, randomUUID()]))
  const config = `${dir}/nats.conf`
  const logFile = `${dir}/nats.log`
  await writeFile(
    config,
    `log_file: ${JSON.stringify(logFile)}\n${natsAuthorization(rights, (p) => JSON.stringify(passwords.get(p)))}`,
  )
  const readyAs = {
    user: "connector",
    password: passwords.get("connector") ?? "",
    inboxPrefix: inboxPrefixOf("cove-connector"),
  }
  const nats = await startNats({
    port: await freePort(),
    storeDir: `${dir}/nats`,
    log: testLog,
    config: { file: config, readyAs },
  })
  t.teardown(() => nats.stop())
  const stack = await withStack(t, {
    natsUrl: nats.url,
    // Presence sweeps (key listings and purges of the presence buckets) run during the test.
    edgeEnv: PRESENCE,
    natsCredentials: (process) => {
      const password = passwords.get(process)
      if (password === undefined) throw new Error(`no NATS user for ${process}`)
      return { natsUser: process, natsPassword: password }
    },
  })
  const w = await stackClients(t, stack.gatewayUrl)
  const call = w.call
  const [ann, ben, cat] = [await w.user("ann"), await w.user("ben"), await w.user("cat")]

  // Conversations and their membership events (control outbox → COVE_CONTROL → edges).
  const group = await call(
    "POST",
    "conversations",
    { kind: "group", title: "ward", members: [ben.id, cat.id] },
    ann.token,
  )
  const annDevice = await w.connect(stack.edgeUrl, ann)
  const benDevice = await w.connect(stack.edgeUrl, ben)
  const catDevice = await w.connect(stack.edgeUrl, cat)

  // Send, ack, delivery (COVE_IN → connector → persist → deliveries; COVE_STORED → index).
  const hello = await sendSeen(annDevice, benDevice, group.id, "needle in the ward")
  t.ok(
    annDevice.of("ack").some((a) => a.id === hello),
    "acked",
  )

  // Edit, reaction, read receipt, typing, presence.
  annDevice.send({
    type: "edit",
    id: randomUUID(),
    conv: group.id,
    target: hello,
    body: text("needle, edited"),
  })
  benDevice.send({ type: "react", id: randomUUID(), conv: group.id, target: hello, emoji: "👍", op: "add" })
  benDevice.send({ type: "read", conv: group.id, seq: 1 })
  benDevice.send({ type: "typing", conv: group.id })
  annDevice.send({ type: "who", users: [ben.id, cat.id], ref: "who-1" })
  await annDevice.waitFor("edit, reaction, receipt, typing and who", (d) =>
    ["edit", "reaction", "read", "typing", "who"].every((type) => d.of(type).length > 0),
  )
  t.match(annDevice.of("who")[0], { users: { [ben.id]: true } })

  // Integrator send, history, recall.
  const viaHttp = randomUUID()
  await call("POST", "messages", { id: viaHttp, conv: group.id, body: text("from an integrator") }, ann.token)
  await catDevice.waitFor("the integrator's message", (d) =>
    d.of("message", group.id).some((m) => m.id === viaHttp),
  )
  annDevice.send({ type: "recall", id: randomUUID(), conv: group.id, target: viaHttp })
  await catDevice.waitFor("the recall", (d) => d.of("recall", group.id).length > 0)
  const history = await call("GET", `messages?conv=${group.id}&after=0`, undefined, cat.token)
  t.ok(history.items.length >= 3, "history has the messages and their events")

  // Search follows what was stored.
  const found = await eventually(async () => {
    const r = await call("GET", "search?q=needle", undefined, ben.token)
    return r.items?.length > 0 ? r.items : undefined
  }, "the indexed message")
  t.equal(found[0].id, hello)

  // Membership change: cat removed, cat's edge unsubscribes cat at once.
  await call("DELETE", `conversations/${group.id}/members/${cat.id}`, undefined, ann.token)
  await catDevice.waitFor("cat told of the removal", (d) =>
    d.of("membership", group.id).some((m) => (m.removed as string[]).includes(cat.id)),
  )
  // An edit of a message that does not exist: stored in COVE_IN, refused by the sequencer, the
  // sender told (cove.user.<id>.refused), the event dead-lettered by the connector (COVE_DLQ).
  const stray = randomUUID()
  annDevice.send({ type: "edit", id: stray, conv: group.id, target: randomUUID(), body: text("?") })
  await annDevice.waitFor("the refusal", (d) => d.of("refused").some((r) => r.id === stray))

  // Files: upload, complete (COVE_FILES → thumbnails), a file message.
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3c3" } })
    .png()
    .toBuffer()
  const declared = await call(
    "POST",
    "files/uploads",
    { conv: group.id, name: "x.png", size: png.length, content_type: "image/png", sha256: sha256(png) },
    ann.token,
  )
  t.ok((await sendBytes(declared.upload, png)).ok, "the store took the bytes")
  await call("POST", `files/${declared.id}/complete`, undefined, ann.token)
  await eventually(async () => {
    const meta = await fetch(`${stack.gatewayUrl}/function/files/${declared.id}`, {
      headers: { authorization: `Bearer ${ann.token}`, accept: "application/json" },
    }).then((r) => r.json() as Promise<{ thumbnail?: unknown }>)
    return meta.thumbnail === undefined ? undefined : true
  }, "the thumbnail")

  // Revocation: ben is disabled; ben's socket is closed.
  await call("POST", `auth/users/${ben.id}/disable`, {}, w.admin.access_token)
  await benDevice.waitFor("ben's socket closed", (d) => d.closed !== undefined)
  t.equal(benDevice.closed?.code, 4004)

  // An edge lost with its machine (SIGKILL): the edge left sweeps its users' presence keys,
  // listing and purging them, and announces them offline.
  const dan = await w.user("dan")
  await call("POST", "conversations", { kind: "direct", members: [dan.id] }, ann.token)
  const lost = await startEdgeProcess(t, stack, {
    NATS_USER: "edge",
    NATS_PASSWORD: passwords.get("edge") ?? "",
    ...PRESENCE,
  })
  await w.connect(lost.url, dan)
  const danIs = (online: boolean) => (d: Device) =>
    d.of("presence").some((p) => p.user === dan.id && p.online === online)
  await annDevice.waitFor("dan online", danIs(true))
  await lost.kill()
  await annDevice.waitFor("dan offline, swept", danIs(false))

  // An edge restarted after a revocation replays it (a consumer of its own, deleted after), and
  // the edge that stopped leaves presence keys for the others to sweep.
  await stack.restartEdge()
  const annAgain = await w.connect(stack.edgeUrl, ann)
  annAgain.send({ type: "who", users: [cat.id], ref: "who-2" })
  await annAgain.waitFor("who after the restart", (d) => d.of("who").length > 0)

  const log = await readFile(logFile, "utf8")
  t.same(log.match(/^.*Violation.*$/gm) ?? [], [], "the server refused nobody anything")
})

t.test("npm run nats:config writes a configuration nats-server accepts", async (t) => {
  const dir = await scratchDir(t, "nats-config")
  const rights = natsRights(loadStack(`${repoRoot}/stack.yml`))
  await writeFile(`${dir}/cove-authorization.conf`, natsAuthorization(rights, passwordVariable))
  await writeFile(`${dir}/nats.conf`, 'include "cove-authorization.conf"\n')
  // Quoted: nats-server parses a variable's value as configuration, and "9e4…" is a number to it.
  const env = Object.fromEntries(
    Object.keys(rights).map((p) => [passwordVariable(p).slice(1), JSON.stringify(randomUUID())]),
  )
  const checked = spawnSync("nats-server", ["-t", "-c", `${dir}/nats.conf`], {
    env: { PATH: process.env.PATH, ...env },
    encoding: "utf8",
  })
  t.equal(checked.status, 0, `${checked.stdout}${checked.stderr}`)
  t.match(checked.stdout + checked.stderr, /is valid/)
})
