import { fileKeys } from "../../lib/adapters/s3-objects"
import type { FileStore, ObjectStore, ThumbnailMaker } from "../../lib/ports"
import type { BatchResult, EventBatch } from "../../lib/protocol/events"
import { fileReadyEvent } from "../../lib/protocol/files"

export type ThumbnailPorts = {
  readonly files: Pick<FileStore, "get" | "setThumbnail">
  readonly objects: Pick<ObjectStore, "read" | "write">
  readonly thumbnails: ThumbnailMaker
  readonly thumbnailable: (contentType: string) => boolean
  readonly maxPixels: number
  readonly maxSourceBytes: number
}

/**
 * Makes a thumbnail beside each ready image (files/<id>/thumbnail.webp) and records its size
 * with the file. Safe to repeat: the same thumbnail is written again. Invalid events are
 * rejected (dead-lettered); a store or database failure fails the batch, which is retried.
 */
export async function handle(batch: EventBatch, p: ThumbnailPorts): Promise<BatchResult> {
  const rejected: { seq: number; code: string; message: string }[] = []
  let processed = 0
  for (const item of batch.messages) {
    const parsed = fileReadyEvent.safeParse(item.data)
    if (!parsed.success) {
      rejected.push({
        seq: item.seq,
        code: "INVALID_INPUT",
        message: parsed.error.issues[0]?.message ?? "invalid",
      })
      continue
    }
    processed++
    const event = parsed.data
    if (!p.thumbnailable(event.content_type) || event.size > p.maxSourceBytes) continue
    const file = await p.files.get(event.id)
    // Deleted since (its conversation went): nothing to do.
    if (file === undefined || file.status !== "ready" || file.thumbnail !== undefined) continue
    const keys = fileKeys(file.id)
    const thumb = await p.thumbnails.make(await p.objects.read(keys.original, p.maxSourceBytes), p.maxPixels)
    if (thumb === undefined) continue
    await p.objects.write(keys.thumbnail, thumb.data, "image/webp")
    await p.files.setThumbnail(file.id, { width: thumb.width, height: thumb.height, size: thumb.data.length })
  }
  return { processed, rejected }
}
