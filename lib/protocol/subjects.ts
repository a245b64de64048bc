/**
 * Every NATS subject Cove uses is built here, from validated tokens only.
 */
import { isSafeId } from "./ids"

/** Carried in every JetStream message, so consumers can refuse what they do not understand. */
export const PROTOCOL_VERSION = 1

export const HEADERS = {
  version: "Cove-Version",
  requestId: "Cove-Request-Id",
  dlqFunction: "Cove-Dlq-Function",
  dlqReason: "Cove-Dlq-Reason",
  dlqStream: "Cove-Dlq-Stream",
  dlqSequence: "Cove-Dlq-Sequence",
  dlqSubject: "Cove-Dlq-Subject",
} as const

function token(value: string, what: string): string {
  if (!isSafeId(value)) throw new Error(`unsafe ${what} for a subject: ${JSON.stringify(value)}`)
  return value
}

/** A partition of an event function's input stream: `<topic>.<partition>`. */
export function partitionSubject(topic: string, partition: number): string {
  if (!Number.isInteger(partition) || partition < 0) throw new Error(`invalid partition ${partition}`)
  return `${topic}.${partition}`
}

/**
 * FNV-1a over the conversation id: stable across processes and languages, so every edge and
 * every HTTP function sends one conversation to the same partition (ARCHITECTURE invariant 3).
 */
export function partitionOf(conversationId: string, partitions: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < conversationId.length; i++) {
    hash ^= conversationId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % partitions
}

/** Where new messages go before the sequencer: the persist function's topic and stream (stack.yml). */
export const INBOUND_TOPIC = "cove.in"
export const INBOUND_STREAM = "COVE_IN"

/**
 * What the sequencer stored, for event functions that follow the conversation (search
 * indexing): declared by their `topic` annotation in stack.yml; absent when none is deployed.
 * Each message's data is a JSON array of stored events, those of one sequencer batch and one
 * partition, in seq order per conversation.
 */
export const STORED_TOPIC = "cove.stored"
export const STORED_STREAM = "COVE_STORED"

/** Files that became ready, for event functions such as thumbnails (stack.yml `topic`). */
export const FILES_TOPIC = "cove.files"
export const FILES_STREAM = "COVE_FILES"

/**
 * JetStream's dedup id for an inbound event: per sender, so nobody can claim another user's
 * message id. A read receipt has no id of its own: the same position read twice is one event.
 */
export function inboundDedupId(
  event: { from: string } & ({ id: string } | { type: "read"; conv: string; seq: number }),
): string {
  return "id" in event ? `${event.from}:${event.id}` : `${event.from}:read:${event.conv}:${event.seq}`
}

export const subjects = {
  inbound: (conversationId: string, partitions: number) =>
    partitionSubject(INBOUND_TOPIC, partitionOf(token(conversationId, "conversation id"), partitions)),
  stored: (conversationId: string, partitions: number) =>
    partitionSubject(STORED_TOPIC, partitionOf(token(conversationId, "conversation id"), partitions)),
  fileReady: (fileId: string, partitions: number) =>
    partitionSubject(FILES_TOPIC, partitionOf(token(fileId, "file id"), partitions)),
  /** Core NATS, one per conversation: each edge subscribes once per conversation it serves. */
  delivery: (conversationId: string) => `cove.deliver.${token(conversationId, "conversation id")}`,
  deadLetter: (functionName: string) => `cove.dlq.${token(functionName, "function name")}`,
  /**
   * The user's sessions were revoked; every edge closes that user's sockets. Published as core
   * NATS and kept by CONTROL_STREAM, which the edges follow, so an edge that was briefly cut off
   * from NATS still hears it.
   */
  userRevoked: (userId: string) => `cove.user.${token(userId, "user id")}.revoked`,
  /** The user joined or left a conversation; edges (un)subscribe that user's sockets. Kept like `userRevoked`. */
  userMembership: (userId: string) => `cove.user.${token(userId, "user id")}.membership`,
  /** Core NATS: the sequencer refused an event the user sent (acked, never stored); edges tell their sockets. */
  userRefused: (userId: string) => `cove.user.${token(userId, "user id")}.refused`,
} as const

/** Every `subjects.userMembership`: one of CONTROL_STREAM's subjects. */
export const USER_MEMBERSHIP_SUBJECTS = "cove.user.*.membership"

/** What an edge subscribes to once to hear every `subjects.userRefused`. */
export const USER_REFUSED_SUBJECTS = "cove.user.*.refused"

/** Every `subjects.userRevoked`: one of CONTROL_STREAM's subjects. */
export const USER_REVOKED_SUBJECTS = "cove.user.*.revoked"

/**
 * The events every edge must not miss (membership changes, revocations), kept for a short while
 * so that an edge whose NATS connection dropped reads what it missed once it is back.
 */
export const CONTROL_STREAM = "COVE_CONTROL"
export const CONTROL_SUBJECTS = [USER_MEMBERSHIP_SUBJECTS, USER_REVOKED_SUBJECTS] as const

export const DEAD_LETTER_STREAM = "COVE_DLQ"
export const DEAD_LETTER_SUBJECTS = "cove.dlq.>"
