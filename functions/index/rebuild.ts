/**
 * Re-indexes every message from the messages table (`npm run search:rebuild`): after a
 * tokenizer change, or when search is deployed on a server that already has messages. The live
 * index keeps working meanwhile: each row is written with the conversation's last seq as its
 * version, so neither side can overwrite the other's newer text.
 */
import type { FileNames, SearchIndex, SearchSource } from "../../lib/ports"
import { fileIdOf, indexedContent } from "../../lib/search/document"

export type RebuildPorts = {
  readonly source: SearchSource
  readonly index: SearchIndex
  readonly files: FileNames
}

export type RebuildProgress = { readonly done: number; readonly total: number; readonly ms: number }

export async function rebuild(
  ports: RebuildPorts,
  options: { batchSize: number; onProgress: (p: RebuildProgress) => void },
): Promise<RebuildProgress> {
  const started = performance.now()
  const total = await ports.source.count()
  let done = 0
  let after: { conv: string; seq: number } | undefined
  for (;;) {
    const rows = await ports.source.messagesAfter(after, options.batchSize)
    const last = rows.at(-1)
    if (last === undefined) break
    const fileIds = rows.map((r) => fileIdOf(r.body)).filter((f) => f !== undefined)
    const names = await ports.files.namesOf([...new Set(fileIds)])
    await ports.index.write(
      rows.map((r) => ({
        conv: r.conv,
        id: r.id,
        seq: r.seq,
        from: r.from,
        ts: r.ts,
        version: r.version,
        ...indexedContent(r.conv, r.body, names),
      })),
    )
    done += rows.length
    after = { conv: last.conv, seq: last.seq }
    options.onProgress({ done, total: Math.max(total, done), ms: performance.now() - started })
  }
  return { done, total: Math.max(total, done), ms: performance.now() - started }
}
