/**
 * A deployment whose NATS asks for credentials: every process (functions, connector, edge)
 * authenticates with the ones it is given, and a wrong password stops the stack at start with
 * NATS's own answer. Run after `npm run build` (npm test does).
 */
import { randomUUID } from "node:crypto"
import { readFile } from "node:fs/promises"
import t, { type Test } from "tap"
import { startNats } from "../../infra/local/nats-server"
import { freePort } from "../../infra/local/ports"
import type { RunningStack } from "../../infra/local/stack"
import { natsClientOptions } from "../../lib/adapters/nats"
import { ConfigError } from "../../lib/config"
import { stackClients } from "../support/device"
import { testLog } from "../support/servers"
import { scratchDir, withStack } from "../support/stack"
import { makeCertificates } from "../support/tls"

const auth = { user: "cove", password: randomUUID() }

/** A message from one device to another, acked, delivered and in history: every process took part. */
async function messageGoesThrough(t: Test, stack: RunningStack): Promise<void> {
  const w = await stackClients(t, stack.gatewayUrl)
  const [ann, ben] = [await w.user("ann"), await w.user("ben")]
  // The conversations function publishes the membership events (control outbox) with them.
  const direct = await w.call("POST", "conversations", { kind: "direct", members: [ben.id] }, ann.token)
  const [annDevice, benDevice] = [await w.connect(stack.edgeUrl, ann), await w.connect(stack.edgeUrl, ben)]
  const id = randomUUID()
  annDevice.send({ type: "send", id, conv: direct.id, body: { kind: "text", text: "密码 ok" } })
  await annDevice.waitFor("the ack: JetStream stored it", (d) => d.of("ack").some((a) => a.id === id))
  // Delivered: the connector fed the sequencer, which published to the edge.
  await benDevice.waitFor("the delivery", (d) => d.of("message", direct.id).some((m) => m.id === id))
  const history = await w.call("GET", `messages?conv=${direct.id}&after=0`, undefined, ben.token)
  t.same(
    history.items.map((m: { id: string; body: unknown }) => [m.id, m.body]),
    [[id, { kind: "text", text: "密码 ok" }]],
  )
}

t.test("with a NATS that asks for a password, messages go through every process", async (t) => {
  const dir = await scratchDir(t, "nats-auth")
  const nats = await startNats({ port: await freePort(), storeDir: `${dir}/nats`, log: testLog, auth })
  t.teardown(() => nats.stop())
  const stack = await withStack(t, {
    natsUrl: nats.url,
    natsCredentials: { natsUser: auth.user, natsPassword: auth.password },
  })
  await messageGoesThrough(t, stack)
})

t.test("with NATS over mutual TLS, messages go through every process", async (t) => {
  const dir = await scratchDir(t, "nats-tls")
  const certs = await makeCertificates(dir)
  const nats = await startNats({
    port: await freePort(),
    storeDir: `${dir}/nats`,
    log: testLog,
    tls: { ...certs.server, ca: certs.ca, client: certs.client },
  })
  t.teardown(() => nats.stop())
  t.match(nats.url, /^tls:\/\//)
  const [ca, cert, key] = await Promise.all(
    [certs.ca, certs.client.cert, certs.client.key].map((f) => readFile(f, "utf8")),
  )
  const stack = await withStack(t, {
    natsUrl: nats.url,
    natsCredentials: { natsTlsCa: ca, natsTlsCert: cert, natsTlsKey: key },
  })
  await messageGoesThrough(t, stack)
})

t.test("a tls:// URL never falls back to plain text", async (t) => {
  const dir = await scratchDir(t, "nats-plain")
  const nats = await startNats({ port: await freePort(), storeDir: `${dir}/nats`, log: testLog })
  t.teardown(() => nats.stop())
  await t.rejects(withStack(t, { natsUrl: nats.url.replace("nats://", "tls://") }), /tls/i)
})

t.test("a wrong NATS password stops the stack at start, saying why", async (t) => {
  const dir = await scratchDir(t, "nats-auth-wrong")
  const nats = await startNats({ port: await freePort(), storeDir: `${dir}/nats`, log: testLog, auth })
  t.teardown(() => nats.stop())
  await t.rejects(
    withStack(t, { natsUrl: nats.url, natsCredentials: { natsUser: auth.user, natsPassword: "wrong" } }),
    /authorization/i,
  )
})

t.test("NATS credentials that do not fit together are a configuration error", async (t) => {
  const problems = (c: Parameters<typeof natsClientOptions>[1]) => {
    try {
      natsClientOptions("nats://x", c)
      return []
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return err.problems
    }
  }
  t.same(problems({}), [], "none: anonymous")
  t.same(problems({ natsToken: "x" }), [])
  t.match(problems({ natsPassword: "p" }), [/NATS_PASSWORD .* without NATS_USER/])
  t.match(problems({ natsUser: "u" }), [/NATS_USER is set without NATS_PASSWORD/])
  t.match(problems({ natsUser: "u", natsPassword: "p", natsToken: "t" }), [/one way to authenticate/])
  t.match(natsClientOptions("nats://x", { natsUser: "u", natsPassword: "p" }), { user: "u", pass: "p" })
  t.match(natsClientOptions("nats://x", { natsToken: "t" }), { token: "t" })
  t.match(problems({ natsTlsCert: "c" }), [/NATS_TLS_CERT and NATS_TLS_KEY .* go together/])
  t.same(natsClientOptions("nats://x", {}), {}, "plain unless asked")
  t.same(natsClientOptions("tls://x", {}), { tls: {} }, "a tls:// URL requires TLS")
  t.same(natsClientOptions("nats://x", { natsTlsCa: "pem" }), { tls: { ca: "pem" } }, "so does a TLS setting")
})
