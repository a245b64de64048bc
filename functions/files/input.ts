import { z } from "zod"
import { safeId } from "../../lib/protocol/ids"

/** type/subtype only, lowercased: it is signed into the upload and compared with the stored object. */
const contentType = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][\w.+-]{0,126}\/[a-z0-9][\w.+-]{0,126}$/, "must be a MIME type such as image/png")

/** Kept as given for display and downloads; control characters are never part of a name. */
const fileName = z
  .string()
  .min(1, "must not be empty")
  .max(255, "must be at most 255 characters")
  .refine(
    (n) => n.isWellFormed() && !/\p{Cc}/u.test(n),
    "must be well-formed text without control characters",
  )

export const uploadInput = z.object({
  conv: safeId,
  name: fileName,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  content_type: contentType,
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .transform((v) => v.toLowerCase())
    .optional(),
  /** PUT (default) for apps and scripts; POST for an HTML form or a browser without fetch. */
  method: z.enum(["PUT", "POST"]).default("PUT"),
})
export type UploadInput = z.output<typeof uploadInput>

export const fileParam = safeId

/** A multipart upload's parts, with the ETag the store answered to each part's PUT. */
export const completeInput = z
  .object({
    parts: z
      .array(z.object({ number: z.number().int().min(1).max(10_000), etag: z.string().min(1).max(200) }))
      .min(1)
      .max(10_000)
      .optional(),
  })
  .default({})
export type CompleteInput = z.output<typeof completeInput>
