/**
 * Files: presigned uploads straight to the S3-compatible store, a check of what was stored, and
 * presigned downloads. Every request checks membership of the file's conversation; non-members
 * get NOT_FOUND so that file ids reveal nothing. The store is never trusted to have enforced the
 * signed limits (s3rver does not): `complete` checks size, type and checksum itself.
 */
import { fileKeys } from "../../lib/adapters/s3-objects"
import { AppError } from "../../lib/errors"
import type {
  Caller,
  ConversationStore,
  FileEvents,
  FileRecord,
  FileStore,
  ObjectStore,
  PresignedUpload,
} from "../../lib/ports"
import type { FileView } from "../../lib/protocol/files"
import type { CompleteInput, UploadInput } from "./input"

export type FilesLimits = {
  readonly maxBytes: number
  readonly allowedTypes: readonly string[]
  readonly multipartThreshold: number
  readonly partBytes: number
  readonly uploadTtlSeconds: number
  readonly downloadTtlSeconds: number
  readonly pendingMaxAgeSeconds: number
  /** Ready files that no message shows (never sent, or recalled) go after this long. */
  readonly unreferencedMaxAgeSeconds: number
}

export type FilesPorts = {
  readonly files: FileStore
  readonly objects: ObjectStore
  readonly events: FileEvents
  readonly conversations: Pick<ConversationStore, "roleOf">
  readonly limits: FilesLimits
  readonly now: () => Date
  readonly newId: () => string
}

/** S3 allows at most 10,000 parts per upload. */
const MAX_PARTS = 10_000

async function requireMember(p: FilesPorts, conv: string, caller: Caller, what: string): Promise<void> {
  if ((await p.conversations.roleOf(conv, caller.userId)) === undefined) throw new AppError("NOT_FOUND", what)
}

export function typeAllowed(contentType: string, allowed: readonly string[]): boolean {
  const family = `${contentType.split("/")[0]}/*`
  return allowed.includes(contentType) || allowed.includes(family)
}

export function view(f: FileRecord): FileView {
  return {
    id: f.id,
    conv: f.conversationId,
    name: f.name,
    size: f.size,
    content_type: f.contentType,
    status: f.status,
    created_at: f.createdAt.toISOString(),
    ...(f.thumbnail === undefined
      ? {}
      : { thumbnail: { width: f.thumbnail.width, height: f.thumbnail.height } }),
  }
}

export type UploadAnswer =
  | { id: string; expires_at: string; upload: PresignedUpload }
  | {
      id: string
      expires_at: string
      multipart: { part_size: number; parts: Array<{ number: number; size: number; url: string }> }
    }

export async function createUpload(input: UploadInput, caller: Caller, p: FilesPorts): Promise<UploadAnswer> {
  await requireMember(p, input.conv, caller, "No such conversation.")
  const { limits } = p
  if (input.size > limits.maxBytes) {
    throw new AppError("FILE_TOO_LARGE", `Files may be at most ${limits.maxBytes} bytes.`, {
      details: { max_bytes: limits.maxBytes },
    })
  }
  if (!typeAllowed(input.content_type, limits.allowedTypes)) {
    throw new AppError("FILE_TYPE_NOT_ALLOWED", `Files of type ${input.content_type} are not accepted.`, {
      details: { allowed: limits.allowedTypes },
    })
  }
  const id = p.newId()
  const key = fileKeys(id).original
  const now = p.now()
  const expiresAt = new Date(now.getTime() + limits.uploadTtlSeconds * 1000).toISOString()
  const record = {
    id,
    conversationId: input.conv,
    ownerId: caller.userId,
    name: input.name,
    size: input.size,
    contentType: input.content_type,
    sha256: input.sha256,
    createdAt: now,
  }
  const ttlSeconds = limits.uploadTtlSeconds
  if (input.size <= limits.multipartThreshold) {
    await p.files.create({ ...record, uploadId: undefined })
    const o = { size: input.size, contentType: input.content_type, ttlSeconds }
    const upload =
      input.method === "POST" ? await p.objects.presignPost(key, o) : await p.objects.presignPut(key, o)
    return { id, expires_at: expiresAt, upload }
  }
  const partSize = partSizeFor(input.size, limits)
  const uploadId = await p.objects.startMultipart(key, input.content_type)
  await p.files.create({ ...record, uploadId })
  const count = Math.ceil(input.size / partSize)
  const parts = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const size = Math.min(partSize, input.size - i * partSize)
      const url = await p.objects.presignPart(key, { uploadId, partNumber: i + 1, size, ttlSeconds })
      return { number: i + 1, size, url }
    }),
  )
  return { id, expires_at: expiresAt, multipart: { part_size: partSize, parts } }
}

function partSizeFor(size: number, limits: FilesLimits): number {
  return Math.max(limits.partBytes, Math.ceil(size / MAX_PARTS))
}

/** The caller's own pending or ready file; NOT_FOUND for anyone else's. */
async function ownFile(id: string, caller: Caller, p: FilesPorts): Promise<FileRecord> {
  const f = await p.files.get(id)
  if (f === undefined || f.ownerId !== caller.userId) throw new AppError("NOT_FOUND", "No such file.")
  await requireMember(p, f.conversationId, caller, "No such file.")
  return f
}

const baseType = (t: string | undefined) => (t ?? "").split(";")[0]?.trim().toLowerCase()

/**
 * Checks what the store holds against the declaration, then marks the file ready and tells the
 * followers (thumbnails). Safe to repeat: a ready file answers as it is and is announced again
 * (deduplicated by the file id).
 */
export async function complete(
  id: string,
  input: CompleteInput,
  caller: Caller,
  p: FilesPorts,
): Promise<FileView> {
  const f = await ownFile(id, caller, p)
  if (f.status === "ready") {
    await p.events.ready(f)
    return view(f)
  }
  const key = fileKeys(f.id).original
  if (f.uploadId !== undefined) {
    const expected = Math.ceil(f.size / partSizeFor(f.size, p.limits))
    if (input.parts?.length !== expected)
      throw new AppError(
        "INVALID_INPUT",
        `parts: the ${expected} parts' numbers and ETags are needed to complete.`,
      )
    const parts = [...input.parts].sort((a, b) => a.number - b.number)
    if (parts.some((part, i) => part.number !== i + 1))
      throw new AppError("INVALID_INPUT", `parts: must be numbered 1 to ${expected}.`)
    await p.objects.completeMultipart(key, f.uploadId, parts)
  }
  const stored = await p.objects.head(key)
  if (stored === undefined) throw new AppError("FILE_NOT_UPLOADED")
  let mismatch: { field: string; declared: string | number; stored: string | number } | undefined
  if (stored.size !== f.size) mismatch = { field: "size", declared: f.size, stored: stored.size }
  else if (baseType(stored.contentType) !== f.contentType)
    mismatch = { field: "content_type", declared: f.contentType, stored: stored.contentType ?? "" }
  else if (f.sha256 !== undefined) {
    const actual = await p.objects.sha256(key)
    if (actual !== f.sha256) mismatch = { field: "sha256", declared: f.sha256, stored: actual }
  }
  if (mismatch !== undefined) {
    await p.objects.remove([key])
    throw new AppError(
      "FILE_MISMATCH",
      `The stored ${mismatch.field} is ${mismatch.stored}, not the declared ${mismatch.declared}; the upload was deleted.`,
      { details: mismatch },
    )
  }
  if (!(await p.files.markReady(f.id, p.now()))) {
    // Completed by a concurrent call (fine) or swept meanwhile (gone): read which.
    const now = await p.files.get(f.id)
    if (now?.status !== "ready") throw new AppError("NOT_FOUND", "No such file.")
  }
  const ready: FileRecord = { ...f, status: "ready", uploadId: undefined }
  await p.events.ready(ready)
  return view(ready)
}

/** Gives up a pending upload: the record, the object and any multipart upload go. */
export async function abort(id: string, caller: Caller, p: FilesPorts): Promise<void> {
  const f = await ownFile(id, caller, p)
  if (f.status !== "pending") throw new AppError("CONFLICT", "The file is complete; it cannot be aborted.")
  await discard(f, p)
}

async function discard(f: FileRecord, p: FilesPorts): Promise<boolean> {
  // The record first: once it is gone nobody can complete the file, so no ready file loses its object.
  if (!(await p.files.removePending(f.id))) return false
  const key = fileKeys(f.id).original
  if (f.uploadId !== undefined) await p.objects.abortMultipart(key, f.uploadId)
  await p.objects.remove([key])
  return true
}

export type Download = { url: string; name: string; size: number; content_type: string } & Partial<{
  thumbnail: { url: string; width: number; height: number }
}>

export async function download(id: string, caller: Caller, p: FilesPorts): Promise<Download> {
  const f = await p.files.get(id)
  if (f === undefined) throw new AppError("NOT_FOUND", "No such file.")
  await requireMember(p, f.conversationId, caller, "No such file.")
  if (f.status !== "ready") throw new AppError("FILE_NOT_READY")
  const keys = fileKeys(f.id)
  const ttlSeconds = p.limits.downloadTtlSeconds
  const url = await p.objects.presignGet(keys.original, {
    fileName: f.name,
    contentType: f.contentType,
    ttlSeconds,
  })
  const answer: Download = { url, name: f.name, size: f.size, content_type: f.contentType }
  if (f.thumbnail !== undefined) {
    const thumbName = `${f.name.replace(/\.[^.]*$/, "")}.thumbnail.webp`
    answer.thumbnail = {
      url: await p.objects.presignGet(keys.thumbnail, {
        fileName: thumbName,
        contentType: "image/webp",
        ttlSeconds,
      }),
      width: f.thumbnail.width,
      height: f.thumbnail.height,
    }
  }
  return answer
}

/**
 * Deletes, oldest first and at most `limit` of each kind per call: pending uploads older than
 * the limit (record, object, multipart upload), and ready files that no message shows once
 * their grace has passed (never sent, or their message was recalled), with their thumbnails.
 */
export async function sweep(p: FilesPorts, limit = 100): Promise<{ pending: number; unreferenced: number }> {
  const now = p.now().getTime()
  let pending = 0
  const stale = new Date(now - p.limits.pendingMaxAgeSeconds * 1000)
  for (const f of await p.files.expiredPending(stale, limit)) if (await discard(f, p)) pending++
  const unreferenced = await p.files.removeUnreferenced(
    new Date(now - p.limits.unreferencedMaxAgeSeconds * 1000),
    limit,
  )
  await p.objects.remove(unreferenced.flatMap((f) => Object.values(fileKeys(f.id))))
  return { pending, unreferenced: unreferenced.length }
}

/** Each instance sweeps at most once per interval, from an upload request (docs/files.md). */
export function sweepSchedule(intervalMs: number): { due(now: Date): boolean } {
  let last = Number.NEGATIVE_INFINITY
  return {
    due(now) {
      if (now.getTime() - last < intervalMs) return false
      last = now.getTime()
      return true
    },
  }
}
