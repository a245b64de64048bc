/**
 * File uploads (docs/files.md): ask the files function for presigned URLs, send the bytes
 * straight to the store with progress, then complete. Browsers use XMLHttpRequest (the only
 * way to see upload progress); elsewhere a streamed fetch body counts the bytes as they go.
 */
import type { FileView } from "../../lib/protocol/files"
import { errorFrom, type Http, HttpError } from "./http"

export type { FileView }

export type UploadOptions = {
  readonly name: string
  readonly contentType: string
  /** Hex SHA-256 of the bytes: complete then checks the stored object end to end. */
  readonly sha256?: string
  /** Called with bytes sent so far and the total, increasing, ending with (total, total). */
  readonly onProgress?: (sent: number, total: number) => void
}

type Presigned = {
  method: "PUT" | "POST"
  url: string
  headers?: Record<string, string>
  fields?: Record<string, string>
}
type UploadAnswer =
  | { id: string; expires_at: string; upload: Presigned }
  | {
      id: string
      expires_at: string
      multipart: { part_size: number; parts: Array<{ number: number; size: number; url: string }> }
    }

type Body = Blob | Uint8Array

type XhrLike = {
  open(method: string, url: string): void
  setRequestHeader(name: string, value: string): void
  getResponseHeader(name: string): string | null
  send(body: unknown): void
  readonly status: number
  readonly responseText: string
  readonly upload: { onprogress: ((ev: { loaded: number }) => void) | null }
  onload: (() => void) | null
  onerror: (() => void) | null
  onabort: (() => void) | null
}
type XhrConstructor = new () => XhrLike

export type Transfer = {
  readonly fetch: typeof fetch
  /** globalThis.XMLHttpRequest in browsers; undefined on Node.js. */
  readonly XMLHttpRequest: XhrConstructor | undefined
}

export function defaultTransfer(fetchFn: typeof fetch): Transfer {
  return {
    fetch: fetchFn,
    XMLHttpRequest: (globalThis as { XMLHttpRequest?: XhrConstructor }).XMLHttpRequest,
  }
}

const sizeOf = (data: Body) => (data instanceof Uint8Array ? data.byteLength : data.size)
const slice = (data: Body, start: number, end: number): Body =>
  data instanceof Uint8Array ? data.subarray(start, end) : data.slice(start, end)

export async function upload(
  http: Http,
  transfer: Transfer,
  conv: string,
  data: Body,
  o: UploadOptions,
): Promise<FileView> {
  const total = sizeOf(data)
  const answer = await http.json<UploadAnswer>("POST", "files/uploads", {
    body: {
      conv,
      name: o.name,
      size: total,
      content_type: o.contentType,
      ...(o.sha256 === undefined ? {} : { sha256: o.sha256 }),
    },
  })
  let sent = 0
  const progress = (n: number) => {
    sent += n
    o.onProgress?.(sent, total)
  }
  o.onProgress?.(0, total)
  let parts: Array<{ number: number; etag: string }> | undefined
  if ("upload" in answer) {
    const u = answer.upload
    if (u.method === "POST") await postForm(transfer, u, data, o.contentType, progress)
    else await put(transfer, u.url, u.headers ?? { "content-type": o.contentType }, data, progress)
  } else {
    parts = []
    let offset = 0
    // One part at a time: each part's URL signs its length, and one stream keeps progress simple.
    for (const part of answer.multipart.parts) {
      const etag = await put(transfer, part.url, {}, slice(data, offset, offset + part.size), progress)
      if (etag === null)
        throw new HttpError(0, "UPLOAD_FAILED", `the store answered part ${part.number} without an ETag`)
      parts.push({ number: part.number, etag })
      offset += part.size
    }
  }
  if (sent < total) progress(total - sent)
  return http.json<FileView>("POST", `files/${encodeURIComponent(answer.id)}/complete`, {
    body: parts === undefined ? {} : { parts },
  })
}

/** PUTs the bytes (the length is signed into the URL, so it must be sent as is); answers the ETag. */
async function put(
  t: Transfer,
  url: string,
  headers: Record<string, string>,
  data: Body,
  progress: (n: number) => void,
): Promise<string | null> {
  if (t.XMLHttpRequest !== undefined) return viaXhr(t.XMLHttpRequest, "PUT", url, headers, data, progress)
  const length = sizeOf(data)
  const res = await t
    .fetch(url, {
      method: "PUT",
      headers: { ...headers, "content-length": String(length) },
      body: counted(data, progress),
      duplex: "half",
    } as RequestInit)
    .catch((cause: unknown) => {
      throw new HttpError(0, "NETWORK_ERROR", "the store could not be reached", { cause })
    })
  if (!res.ok) throw await storeError(res)
  await res.arrayBuffer()
  return res.headers.get("etag")
}

/** An HTML-form style POST: the policy's fields first, the file last. */
async function postForm(
  t: Transfer,
  u: Presigned,
  data: Body,
  contentType: string,
  progress: (n: number) => void,
) {
  const form = new FormData()
  for (const [k, v] of Object.entries(u.fields ?? {})) form.append(k, v)
  form.append("file", data instanceof Uint8Array ? new Blob([blobPart(data)], { type: contentType }) : data)
  if (t.XMLHttpRequest !== undefined) {
    await viaXhr(t.XMLHttpRequest, "POST", u.url, {}, form, progress)
    return
  }
  const res = await t.fetch(u.url, { method: "POST", body: form }).catch((cause: unknown) => {
    throw new HttpError(0, "NETWORK_ERROR", "the store could not be reached", { cause })
  })
  if (!res.ok) throw await storeError(res)
  await res.arrayBuffer()
  progress(sizeOf(data))
}

/** The body as a stream of 64 KiB chunks, counted as fetch pulls them. */
function counted(data: Body, progress: (n: number) => void): ReadableStream<Uint8Array> {
  const chunk = 64 * 1024
  let offset = 0
  const total = sizeOf(data)
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (offset >= total) {
        controller.close()
        return
      }
      const part = slice(data, offset, Math.min(total, offset + chunk))
      const bytes = part instanceof Uint8Array ? part : new Uint8Array(await part.arrayBuffer())
      offset += bytes.byteLength
      controller.enqueue(bytes)
      progress(bytes.byteLength)
    },
  })
}

function viaXhr(
  Xhr: XhrConstructor,
  method: string,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  progress: (n: number) => void,
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr()
    xhr.open(method, url)
    // Browsers set content-length themselves and refuse to have it set.
    for (const [k, v] of Object.entries(headers))
      if (k.toLowerCase() !== "content-length") xhr.setRequestHeader(k, v)
    let reported = 0
    xhr.upload.onprogress = (ev) => {
      if (ev.loaded > reported) progress(ev.loaded - reported)
      reported = Math.max(reported, ev.loaded)
    }
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader("etag"))
      else reject(new HttpError(xhr.status, "UPLOAD_FAILED", `the store refused the upload (${xhr.status})`))
    }
    xhr.onerror = () => reject(new HttpError(0, "NETWORK_ERROR", "the store could not be reached"))
    xhr.onabort = () => reject(new HttpError(0, "NETWORK_ERROR", "the upload was aborted"))
    xhr.send(body instanceof Uint8Array ? new Blob([blobPart(body)]) : body)
  })
}

/** Blobs take bytes over an ArrayBuffer only; bytes over a SharedArrayBuffer are copied. */
function blobPart(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes)
}

/** A store's error is XML, not ours: keep its status, name it UPLOAD_FAILED. */
async function storeError(res: Response): Promise<HttpError> {
  const e = await errorFrom(res)
  return new HttpError(res.status, "UPLOAD_FAILED", `the store refused the upload: ${e.message}`)
}
