/**
 * Ids that reach NATS subjects, S3 keys or SQL are checked against a safe alphabet first
 * (ARCHITECTURE invariant 7): no dots, wildcards, spaces or slashes can slip through.
 */
import { z } from "zod"

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

export function isSafeId(value: string): boolean {
  return SAFE_ID.test(value)
}

export function isUuid(value: string): boolean {
  return UUID.test(value)
}

export const safeId = z.string().regex(SAFE_ID, "must be 1-64 letters, digits, _ or -")
export const uuid = z
  .string()
  .regex(UUID, "must be a UUID")
  .transform((v) => v.toLowerCase())
