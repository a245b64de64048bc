/** Events about files, carried on the COVE_FILES stream (functions/files → functions/thumbnails). */
import { z } from "zod"
import { safeId } from "./ids"

export const fileReadyEvent = z.object({
  v: z.literal(1),
  type: z.literal("file.ready"),
  id: safeId,
  conv: safeId,
  content_type: z.string(),
  size: z.number().int().min(0),
})
export type FileReadyEvent = z.output<typeof fileReadyEvent>

/** A file as the files function answers it (docs/files.md) and the SDK returns it. */
export type FileView = {
  id: string
  conv: string
  name: string
  size: number
  content_type: string
  status: "pending" | "ready"
  created_at: string
  thumbnail?: { width: number; height: number }
}
