/** Decoding what arrives over NATS: JSON bytes checked against one of the protocol's schemas. */
import type { z } from "zod"

export type Decoded<T> =
  | { readonly ok: true; readonly data: T }
  | {
      readonly ok: false
      /** For a log line: "<what> is not JSON; ignored". */
      readonly problem: "is not JSON" | "is invalid"
      /** Log fields: the parse error, or the schema's issues. */
      readonly detail: Readonly<Record<string, unknown>>
    }

const decoder = new TextDecoder()

export function decodeJson<S extends z.ZodType>(schema: S, data: Uint8Array): Decoded<z.output<S>> {
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(data))
  } catch (err) {
    return { ok: false, problem: "is not JSON", detail: { err } }
  }
  const parsed = schema.safeParse(json)
  return parsed.success
    ? { ok: true, data: parsed.data }
    : { ok: false, problem: "is invalid", detail: { issues: parsed.error.issues } }
}
