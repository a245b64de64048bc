/**
 * Membership changes and revocations reach an edge that lost its NATS connection for a moment
 * while NATS stayed up (a network blip): the edge reaches NATS through a TCP proxy that the
 * test cuts, the change is made through the real functions meanwhile, and once the edge is back
 * it acts on what it missed. Run after `npm run build` (npm test does).
 */
import { randomUUID } from "node:crypto"
import { connect, nanos } from "nats"
import t, { type Test } from "tap"
import { startEdge } from "../../gateway/edge"
import { startNats } from "../../infra/local/nats-server"
import { freePort } from "../../infra/local/ports"
import { loadConfig } from "../../lib/config"
import { subjects } from "../../lib/protocol/subjects"
import { gatewayFields } from "../../lib/settings"
import { sendSeen, stackClients } from "../support/device"
import { eventually, testLog } from "../support/servers"
import { scratchDir, withStack } from "../support/stack"
import { withTcpProxy } from "../support/tcp-proxy"

async function world(t: Test) {
  const dir = await scratchDir(t, "control")
  const nats = await startNats({ port: await freePort(), storeDir: `${dir}/nats`, log: testLog })
  t.teardown(() => nats.stop())
  const stack = await withStack(t, { natsUrl: nats.url })
  const proxy = await withTcpProxy(t, nats.port)
  // The edge under test: in this process, reaching NATS only through the proxy.
  const edge = await startEdge(
    loadConfig(gatewayFields, {
      env: {
        COVE_EDGE_PORT: "0",
        NATS_URL: proxy.url,
        COVE_FUNCTIONS_URL: stack.gatewayUrl,
        COVE_JWKS_URL: `${stack.gatewayUrl}/function/auth/jwks`,
      },
      secretsDir: "/nonexistent",
    }),
    testLog,
  )
  t.teardown(() => edge.drain(1_000))
  const edgeUrl = `ws://127.0.0.1:${edge.port}/v1/ws`
  const healthy = async () => (await fetch(`http://127.0.0.1:${edge.port}/healthz`)).status === 200

  const clients = await stackClients(t, stack.gatewayUrl)
  return {
    ...clients,
    edgeUrl,
    otherEdgeUrl: stack.edgeUrl,
    natsUrl: nats.url,
    /** Cuts the edge off NATS and waits until it knows. */
    async cut() {
      proxy.cut()
      await eventually(async () => ((await healthy()) ? undefined : true), "the edge to see NATS gone")
    },
    /** Lets the edge reconnect and waits until it has. */
    async resume() {
      proxy.resume()
      await eventually(async () => ((await healthy()) ? true : undefined), "the edge to reconnect", 15_000)
    },
  }
}

const text = (s: string) => ({ kind: "text", text: s })

/** Alice's group with ursula and walter, each with a device on the edge under test. */
async function ward(w: Awaited<ReturnType<typeof world>>, title: string) {
  const [alice, u, v] = [await w.user("alice"), await w.user("ursula"), await w.user("walter")]
  const group = await w.call(
    "POST",
    "conversations",
    { kind: "group", title, members: [u.id, v.id] },
    alice.token,
  )
  return {
    alice,
    u,
    v,
    group,
    uDevice: await w.connect(w.edgeUrl, u),
    vDevice: await w.connect(w.edgeUrl, v),
  }
}

t.test(
  "a member removed while the edge was cut off from NATS receives nothing after it is back",
  async (t) => {
    const w = await world(t)
    const { alice, u, v, group, uDevice, vDevice: wDevice } = await ward(w, "ward 4")
    const wElsewhere = await w.connect(w.otherEdgeUrl, v)
    const before = await sendSeen(wDevice, uDevice, group.id, "before the cut")

    await w.cut()
    const removed = await w.call(
      "DELETE",
      `conversations/${group.id}/members/${u.id}`,
      undefined,
      alice.token,
    )
    t.same(removed.removed, [u.id], "removed while the edge was cut off")
    await w.resume()

    const id = randomUUID()
    wDevice.send({ type: "send", id, conv: group.id, body: text("after u left") })
    for (const d of [wDevice, wElsewhere])
      await d.waitFor("w's devices get the message", (x) =>
        x.of("message", group.id).some((m) => m.id === id),
      )
    t.same(
      uDevice.of("message", group.id).map((m) => m.id),
      [before],
      "u got no message of the group after the removal",
    )
    await uDevice.waitFor("u told of the removal", (d) =>
      d.of("membership", group.id).some((m) => (m.removed as string[]).includes(u.id)),
    )
  },
)

t.test("a user disabled while the edge was cut off from NATS loses the socket once it is back", async (t) => {
  const w = await world(t)
  const [alice, u] = [await w.user("alice"), await w.user("ursula")]
  const direct = await w.call("POST", "conversations", { kind: "direct", members: [u.id] }, alice.token)
  const uDevice = await w.connect(w.edgeUrl, u)
  // Once u receives this, the edge has u's conversations: loading them cannot fail later, when
  // the functions already refuse u.
  const aliceDevice = await w.connect(w.otherEdgeUrl, alice)
  const hi = randomUUID()
  aliceDevice.send({ type: "send", id: hi, conv: direct.id, body: text("hi") })
  await uDevice.waitFor("u receives", (d) => d.of("message", direct.id).some((m) => m.id === hi))
  const closed = new Promise<number>((resolve) => uDevice.ws.once("close", (code) => resolve(code)))

  await w.cut()
  await w.call("POST", `auth/users/${u.id}/disable`, {}, w.admin.access_token)
  await w.resume()

  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([
    closed,
    new Promise<"open">((resolve) => {
      timer = setTimeout(() => resolve("open"), 5_000)
    }),
  ])
  clearTimeout(timer)
  t.equal(code, 4004, "closed with AUTH_USER_DISABLED, as when the edge was connected")
})

t.test(
  "an edge cut off for longer than COVE_CONTROL keeps events closes its sockets, which load their memberships again",
  async (t) => {
    const w = await world(t)
    const [alice, u] = [await w.user("alice"), await w.user("ursula")]
    const group = await w.call(
      "POST",
      "conversations",
      { kind: "group", title: "ward 5", members: [u.id] },
      alice.token,
    )
    const direct = await w.call("POST", "conversations", { kind: "direct", members: [u.id] }, alice.token)
    const aliceDevice = await w.connect(w.otherEdgeUrl, alice)
    const uDevice = await w.connect(w.edgeUrl, u)
    await sendSeen(aliceDevice, uDevice, group.id, "before the cut")

    // An operator keeps control events for one second only: the removal expires before the edge is back.
    const nc = await connect({ servers: w.natsUrl })
    t.teardown(() => nc.close())
    const jsm = await nc.jetstreamManager()
    const { config } = await jsm.streams.info("COVE_CONTROL")
    await jsm.streams.update("COVE_CONTROL", {
      ...config,
      max_age: nanos(1_000),
      duplicate_window: nanos(1_000),
    })
    await w.cut()
    await w.call("DELETE", `conversations/${group.id}/members/${u.id}`, undefined, alice.token)
    await eventually(
      async () => ((await jsm.streams.info("COVE_CONTROL")).state.messages === 0 ? true : undefined),
      "the removal to expire",
    )
    // And back to an hour, so that nothing later expires before the edge reads it.
    await jsm.streams.update("COVE_CONTROL", config)
    await w.resume()
    await uDevice.waitFor("u's socket closed", (d) => d.closed !== undefined)
    t.same(uDevice.closed, { code: 1012, reason: "RESYNC_REQUIRED" }, "reconnect after a random delay")

    // The client reconnects; the edge loads u's conversations again, without the group.
    const again = await w.connect(w.edgeUrl, u)
    const after = randomUUID()
    aliceDevice.send({ type: "send", id: after, conv: group.id, body: text("after u left") })
    await aliceDevice.waitFor("alice's own copy", (d) =>
      d.of("message", group.id).some((m) => m.id === after),
    )
    const probe = randomUUID()
    aliceDevice.send({ type: "send", id: probe, conv: direct.id, body: text("still there?") })
    await again.waitFor("u's direct message, sent after the group's", (d) =>
      d.of("message", direct.id).some((m) => m.id === probe),
    )
    t.same(again.of("message", group.id), [], "nothing of the group after the removal")
  },
)

t.test(
  "deliveries reaching an edge back from a cut wait until it has read the control events of the cut",
  async (t) => {
    const w = await world(t)
    const { alice, u, group, uDevice, vDevice } = await ward(w, "ward 6")
    await sendSeen(vDevice, uDevice, group.id, "before the cut")
    const nc = await connect({ servers: w.natsUrl })
    t.teardown(() => nc.close())
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

    await w.cut()
    // Control events for someone with no socket here, queued ahead of the removal: reading them
    // keeps the edge busy for a while after it is back.
    const js = nc.jetstream()
    await Promise.all(
      Array.from({ length: 3_000 }, () =>
        js.publish(
          subjects.userMembership("nobody"),
          encode({
            type: "membership",
            id: randomUUID(),
            conv: "elsewhere",
            added: ["nobody"],
            removed: [],
            by: alice.id,
          }),
        ),
      ),
    )
    await w.call("DELETE", `conversations/${group.id}/members/${u.id}`, undefined, alice.token)
    // Deliveries of the group, published every 2 ms from before the edge is back until after.
    const probes: string[] = []
    const publishing = setInterval(() => {
      const id = randomUUID()
      probes.push(id)
      nc.publish(
        subjects.delivery(group.id),
        encode({
          type: "message",
          conv: group.id,
          seq: 1_000 + probes.length,
          id,
          from: alice.id,
          body: text("probe"),
          ts: new Date().toISOString(),
        }),
      )
    }, 2)
    t.teardown(() => clearInterval(publishing))
    await w.resume()
    await vDevice.waitFor(
      "v, still a member, gets the group's deliveries again",
      (d) => d.of("message", group.id).filter((m) => probes.includes(m.id as string)).length >= 100,
    )
    clearInterval(publishing)
    await uDevice.waitFor("u told of the removal", (d) =>
      d.of("membership", group.id).some((m) => (m.removed as string[]).includes(u.id)),
    )
    t.same(
      uDevice.of("message", group.id).filter((m) => probes.includes(m.id as string)),
      [],
      "u, removed during the cut, got none of the group's deliveries after it",
    )
    const metrics = await (
      await fetch(w.edgeUrl.replace(/^ws:/, "http:").replace(/\/v1\/ws$/, "/metrics"))
    ).text()
    t.match(metrics, /^cove_edge_control_catch_ups_total\{outcome="released"\} [1-9]/m, "counted")
  },
)
