/**
 * The files' object store over the AWS SDK: presigned uploads and downloads for clients, and the
 * server's own checks (HEAD, checksum, thumbnails). Object keys come from `fileKeys` only.
 */
import { createHash } from "node:crypto"
import type { Readable } from "node:stream"
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3"
import { createPresignedPost } from "@aws-sdk/s3-presigned-post"
import { getSignedUrl } from "@aws-sdk/s3-request-presigner"
import { AppError } from "../errors"
import type { ObjectStore } from "../ports"
import { isSafeId } from "../protocol/ids"
import { contentDisposition } from "./content-disposition"

/** The only place object keys are made: from a server-generated file id, never a user string. */
export const fileKeys = (fileId: string) => {
  if (!isSafeId(fileId)) throw new Error(`unsafe file id for an object key: ${JSON.stringify(fileId)}`)
  return { original: `files/${fileId}/original`, thumbnail: `files/${fileId}/thumbnail.webp` }
}

const isNotFound = (err: unknown) =>
  err instanceof S3ServiceException &&
  (err.$metadata.httpStatusCode === 404 || err.name === "NotFound" || err.name === "NoSuchKey")

const isNoSuchUpload = (err: unknown) =>
  isNotFound(err) || (err instanceof S3ServiceException && err.name === "NoSuchUpload")

/** Store failures are dependency failures; the cause (never a URL) goes to the log. */
const unavailable = (what: string) => (err: unknown) => {
  throw new AppError("UNAVAILABLE", `The file store failed to ${what}.`, { cause: err })
}

export function s3ObjectStore(client: S3Client, bucket: string): ObjectStore {
  return {
    async presignPut(key, o) {
      const command = new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        ContentType: o.contentType,
        ContentLength: o.size,
      })
      // Both headers are signed, so the store refuses another length or type (403).
      const url = await getSignedUrl(client, command, {
        expiresIn: o.ttlSeconds,
        signableHeaders: new Set(["content-type", "content-length"]),
      })
      return { method: "PUT", url, headers: { "content-type": o.contentType } }
    },

    async presignPost(key, o) {
      const { url, fields } = await createPresignedPost(client, {
        Bucket: bucket,
        Key: key,
        Conditions: [
          ["content-length-range", o.size, o.size],
          ["eq", "$Content-Type", o.contentType],
        ],
        Fields: { "Content-Type": o.contentType },
        Expires: o.ttlSeconds,
      })
      return { method: "POST", url, fields }
    },

    async startMultipart(key, contentType) {
      const out = await client
        .send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType }))
        .catch(unavailable("start a multipart upload"))
      if (out.UploadId === undefined) throw new AppError("UNAVAILABLE", "The store gave no upload id.")
      return out.UploadId
    },

    presignPart(key, o) {
      return getSignedUrl(
        client,
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: o.uploadId,
          PartNumber: o.partNumber,
          ContentLength: o.size,
        }),
        { expiresIn: o.ttlSeconds, signableHeaders: new Set(["content-length"]) },
      )
    },

    async completeMultipart(key, uploadId, parts) {
      try {
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
          }),
        )
        return true
      } catch (err) {
        // Completed or aborted already: the caller looks at the object itself.
        if (isNoSuchUpload(err)) return false
        if (
          err instanceof S3ServiceException &&
          ["InvalidPart", "InvalidPartOrder", "EntityTooSmall"].includes(err.name)
        )
          throw new AppError("INVALID_INPUT", `The parts do not match the uploaded ones (${err.name}).`, {
            cause: err,
          })
        return unavailable("complete a multipart upload")(err)
      }
    },

    async abortMultipart(key, uploadId) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch((err: unknown) => {
          // Gone already (completed, aborted, or expired by the lifecycle rule): nothing to do.
          // s3rver cannot abort at all (405); its parts stay in the development store.
          if (
            isNoSuchUpload(err) ||
            (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 405)
          )
            return
          return unavailable("abort a multipart upload")(err)
        })
    },

    async head(key) {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
        return { size: out.ContentLength ?? 0, contentType: out.ContentType }
      } catch (err) {
        if (isNotFound(err)) return undefined
        return unavailable("read an object's metadata")(err)
      }
    },

    async sha256(key) {
      const out = await client
        .send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        .catch(unavailable("read an object"))
      const hash = createHash("sha256")
      for await (const chunk of out.Body as Readable) hash.update(chunk as Buffer)
      return hash.digest("hex")
    },

    async read(key, maxBytes) {
      const out = await client
        .send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        .catch(unavailable("read an object"))
      const chunks: Buffer[] = []
      let total = 0
      for await (const chunk of out.Body as Readable) {
        total += (chunk as Buffer).length
        if (total > maxBytes) {
          ;(out.Body as Readable).destroy()
          throw new AppError("FILE_TOO_LARGE", `The object is larger than ${maxBytes} bytes.`)
        }
        chunks.push(chunk as Buffer)
      }
      return Buffer.concat(chunks)
    },

    async write(key, body, contentType) {
      await client
        .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }))
        .catch(unavailable("write an object"))
    },

    presignGet(key, o) {
      return getSignedUrl(
        client,
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ResponseContentDisposition: contentDisposition(o.fileName),
          ResponseContentType: o.contentType,
        }),
        { expiresIn: o.ttlSeconds },
      )
    },

    async remove(keys) {
      if (keys.length === 0) return
      // DeleteObjects takes at most 1,000 keys; deleting a missing key is not an error in S3.
      for (let i = 0; i < keys.length; i += 1000) {
        const out = await client
          .send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
            }),
          )
          .catch(unavailable("delete objects"))
        if (out.Errors !== undefined && out.Errors.length > 0)
          throw new AppError(
            "UNAVAILABLE",
            `The file store kept ${out.Errors.length} objects it was told to delete.`,
          )
      }
    },
  }
}
