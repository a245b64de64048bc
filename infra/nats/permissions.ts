/**
 * The NATS rights each Cove process needs, and nothing more: one NATS user per process, so that
 * a compromised function cannot read the message streams, publish as an edge or delete a stream.
 * Each process reads replies only under its own inbox prefix (lib/adapters/nats.ts
 * inboxPrefixOf), since JetStream hands pulled messages to the puller's inbox. The source of
 * `npm run nats:config` (a nats-server `authorization` block) and of the test that runs the whole
 * stack with exactly these rights (test/e2e/nats-permissions.test.ts).
 */

import { PRESENCE_BUCKET, PRESENCE_SWEEP_BUCKET } from "../../gateway/presence"
import { PRESENCE_STATE_BUCKET } from "../../gateway/presence-state"
import { inboxPrefixOf } from "../../lib/adapters/nats"
import {
  CONTROL_STREAM,
  DEAD_LETTER_STREAM,
  DEAD_LETTER_SUBJECTS,
  FILES_STREAM,
  FILES_TOPIC,
  INBOUND_STREAM,
  INBOUND_TOPIC,
  STORED_STREAM,
  STORED_TOPIC,
  USER_MEMBERSHIP_SUBJECTS,
  USER_REFUSED_SUBJECTS,
  USER_REVOKED_SUBJECTS,
} from "../../lib/protocol/subjects"
import type { Stack } from "../stack"

export type NatsRights = { readonly publish: readonly string[]; readonly subscribe: readonly string[] }

const API = "$JS.API"
const DELIVERIES = "cove.deliver.*"
const streamInfo = (stream: string) => `${API}.STREAM.INFO.${stream}`
const inbox = (connectionName: string) => `${inboxPrefixOf(connectionName)}.>`

/** Creating (or fixing the subjects of) a stream the process owns, and reading it. */
const ownStream = (stream: string) => [
  streamInfo(stream),
  `${API}.STREAM.CREATE.${stream}`,
  `${API}.STREAM.UPDATE.${stream}`,
]

/** Consumers of a stream: created (named, ephemeral or durable), read, pulled from, acked, deleted. */
const consume = (stream: string) => [
  `${API}.CONSUMER.CREATE.${stream}`,
  `${API}.CONSUMER.CREATE.${stream}.>`,
  `${API}.CONSUMER.DURABLE.CREATE.${stream}.*`,
  `${API}.CONSUMER.INFO.${stream}.*`,
  `${API}.CONSUMER.DELETE.${stream}.*`,
  `${API}.CONSUMER.MSG.NEXT.${stream}.*`,
  `$JS.ACK.${stream}.>`,
]

/** A KV bucket: created, read (direct or not), written, listed and purged through its stream. */
const keyValue = (bucket: string) => [
  ...ownStream(`KV_${bucket}`),
  `$KV.${bucket}.>`,
  `${API}.DIRECT.GET.KV_${bucket}`,
  `${API}.DIRECT.GET.KV_${bucket}.>`,
  `${API}.STREAM.MSG.GET.KV_${bucket}`,
  `${API}.STREAM.PURGE.KV_${bucket}`,
]

/** Publishing to a stream's subjects and knowing its partitions (the stream's subject count). */
const publishTo = (stream: string, topic: string) => [streamInfo(stream), `${topic}.*`]

/**
 * The rights of every process of a deployment of `stack`: the edge, the connector (it creates the
 * streams and consumers of the event functions stack.yml names) and each function. A function
 * this table does not know (added to stack.yml by a deployment) gets its inbox only.
 */
export function natsRights(stack: Stack): Record<string, NatsRights> {
  const topics = stack.functions.flatMap((f) => (f.topic === undefined ? [] : [f.topic]))
  const functionRights: Record<string, readonly string[]> = {
    auth: [`${API}.INFO`, streamInfo(CONTROL_STREAM), USER_REVOKED_SUBJECTS],
    conversations: [`${API}.INFO`, streamInfo(CONTROL_STREAM), USER_MEMBERSHIP_SUBJECTS, DELIVERIES],
    messages: [`${API}.INFO`, ...publishTo(INBOUND_STREAM, INBOUND_TOPIC)],
    persist: [`${API}.INFO`, ...publishTo(STORED_STREAM, STORED_TOPIC), DELIVERIES, USER_REFUSED_SUBJECTS],
    files: [`${API}.INFO`, ...publishTo(FILES_STREAM, FILES_TOPIC)],
  }
  const rights: Record<string, NatsRights> = {
    edge: {
      publish: [
        `${API}.INFO`,
        ...publishTo(INBOUND_STREAM, INBOUND_TOPIC),
        // Typing, presence and the answers to membership changes go to the members' edges.
        DELIVERIES,
        ...ownStream(CONTROL_STREAM),
        ...consume(CONTROL_STREAM),
        ...keyValue(PRESENCE_BUCKET),
        ...keyValue(PRESENCE_STATE_BUCKET),
        ...keyValue(PRESENCE_SWEEP_BUCKET),
      ],
      subscribe: [DELIVERIES, USER_REFUSED_SUBJECTS, inbox("cove-edge")],
    },
    connector: {
      publish: [
        `${API}.INFO`,
        ...topics.flatMap((t) => [...ownStream(t.stream), ...consume(t.stream)]),
        // Dead letters are kept for operators; the connector only writes them.
        ...ownStream(DEAD_LETTER_STREAM),
        DEAD_LETTER_SUBJECTS,
      ],
      subscribe: [inbox("cove-connector")],
    },
  }
  for (const f of stack.functions)
    rights[f.name] = { publish: functionRights[f.name] ?? [], subscribe: [inbox(`cove-${f.name}`)] }
  return rights
}

const quoted = (s: string) => JSON.stringify(s)

/** `allow` of the subjects, or deny everything when there are none (an empty allow list allows all). */
function rule(subjects: readonly string[]): string {
  return subjects.length === 0 ? `{ deny: [">"] }` : `{ allow: [${subjects.map(quoted).join(", ")}] }`
}

/**
 * A nats-server `authorization` block with one user per process. `password` gives each user's
 * password as it should appear in the file: a quoted value, or a `$VARIABLE` that nats-server
 * reads from its environment.
 */
export function natsAuthorization(
  rights: Readonly<Record<string, NatsRights>>,
  password: (process: string) => string,
): string {
  const users = Object.entries(rights).map(([process, r]) =>
    [
      "    {",
      `      user: ${quoted(process)}`,
      `      password: ${password(process)}`,
      "      permissions: {",
      `        publish: ${rule(r.publish)}`,
      `        subscribe: ${rule(r.subscribe)}`,
      "      }",
      "    }",
    ].join("\n"),
  )
  return `authorization {\n  users = [\n${users.join("\n")}\n  ]\n}\n`
}
