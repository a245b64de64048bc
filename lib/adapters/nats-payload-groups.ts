import type { NatsConnection } from "nats"

/**
 * What one NATS message may carry here: below the server's max_payload (headers count too), and
 * at most 512 KiB so that a consumer never holds one huge message.
 */
export function payloadBudget(nc: NatsConnection): number {
  const serverMax = nc.info?.max_payload ?? 1024 * 1024
  return Math.max(16 * 1024, Math.min(512 * 1024, serverMax - 16 * 1024))
}

export type PayloadGroup<E> = {
  readonly subject: string
  readonly events: E[]
  readonly parts: Uint8Array[]
  bytes: number
}

/**
 * Groups events by NATS subject, each group's encoded events within `maxBytes`, keeping every
 * subject's events in the order given. One NATS message per group instead of one per event: a
 * sequencer batch becomes a few messages for the server, the connector and the edges to handle.
 * An event larger than `maxBytes` goes alone (NATS then refuses it, as it would on its own).
 */
export function groupBySubject<E>(
  events: readonly E[],
  subjectOf: (event: E) => string,
  bytesOf: (event: E) => Uint8Array,
  maxBytes: number,
): PayloadGroup<E>[] {
  const open = new Map<string, PayloadGroup<E>>()
  const groups: PayloadGroup<E>[] = []
  for (const event of events) {
    const subject = subjectOf(event)
    const bytes = bytesOf(event)
    let group = open.get(subject)
    // One byte per event for the separator.
    if (group === undefined || group.bytes + bytes.byteLength + 1 > maxBytes) {
      group = { subject, events: [], parts: [], bytes: 2 }
      open.set(subject, group)
      groups.push(group)
    }
    group.events.push(event)
    group.parts.push(bytes)
    group.bytes += bytes.byteLength + 1
  }
  return groups
}

/** `parts` joined by `separator`, between `open` and `close` (each a byte, or none). */
export function joinParts(
  parts: readonly Uint8Array[],
  separator: number,
  open?: number,
  close?: number,
): Uint8Array {
  let size = parts.length - 1 + (open === undefined ? 0 : 1) + (close === undefined ? 0 : 1)
  for (const p of parts) size += p.byteLength
  const out = new Uint8Array(size)
  let at = 0
  if (open !== undefined) out[at++] = open
  for (const [i, p] of parts.entries()) {
    if (i > 0) out[at++] = separator
    out.set(p, at)
    at += p.byteLength
  }
  if (close !== undefined) out[at++] = close
  return out
}
